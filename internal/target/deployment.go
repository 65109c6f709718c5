package target

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/deploy"
)

// Deployment is a workload of skiff's base chart: a Deployment and a
// Service named after the workload.
type Deployment struct{ base }

// Status reads the Deployment and its pods.
func (d *Deployment) Status(ctx context.Context, rel *deploy.Record) (*Status, error) {
	st := d.newStatus(rel)
	if rel == nil {
		return st, nil
	}
	dep, err := d.c.Clientset.AppsV1().Deployments(d.c.Namespace).Get(ctx, d.w.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		st.State = StateFailed
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("reading deployment %s: %w", d.w.Name, err)
	}
	st.Desired, st.Ready = desired(dep), dep.Status.ReadyReplicas
	if st.Restarts, err = d.restarts(ctx, d.Selector()); err != nil {
		return nil, err
	}
	d.summarize(ctx, st, rel, rolledOut(dep), d.Selector())
	d.exposeStatus(ctx, st, rel)
	return st, nil
}

// Restart rolls the Deployment's pods, as `kubectl rollout restart` does.
func (d *Deployment) Restart(ctx context.Context) error {
	return restartDeployment(ctx, &d.base, d.w.Name)
}

func desired(dep *appsv1.Deployment) int32 {
	if dep.Spec.Replicas != nil {
		return *dep.Spec.Replicas
	}
	return 1
}

func rolledOut(dep *appsv1.Deployment) bool {
	want := desired(dep)
	return dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas == want && dep.Status.Replicas == want
}

func restartDeployment(ctx context.Context, b *base, name string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"skiff.dev/restartedAt":%q}}}}}`, time.Now().UTC().Format(time.RFC3339Nano))
	_, err := b.c.Clientset.AppsV1().Deployments(b.c.Namespace).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return &NotRunningError{Msg: fmt.Sprintf("there is no Deployment %s in namespace %s to restart; run `skiff deploy %s` first", name, b.c.Namespace, b.w.Name)}
	}
	if err != nil {
		return fmt.Errorf("restarting %s: %w", name, err)
	}
	return nil
}

// Chart is a workload deployed with its own chart/: its Deployments are
// whatever its release's manifest holds.
type Chart struct{ base }

// deployments lists the names of the Deployments in a release's manifest.
func deployments(manifest string) ([]string, error) {
	var names []string
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal(doc, &head) == nil && head.Kind == "Deployment" && head.Metadata.Name != "" {
			names = append(names, head.Metadata.Name)
		}
	}
}

// Status sums up the Deployments of the release: ready when all are.
func (c *Chart) Status(ctx context.Context, rel *deploy.Record) (*Status, error) {
	st := c.newStatus(rel)
	if rel == nil {
		return st, nil
	}
	names, err := deployments(rel.Manifest)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", c.release, err)
	}
	all := true
	for _, n := range names {
		dep, err := c.c.Clientset.AppsV1().Deployments(c.c.Namespace).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			all = false
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading deployment %s: %w", n, err)
		}
		st.Desired += desired(dep)
		st.Ready += dep.Status.ReadyReplicas
		all = all && rolledOut(dep)
	}
	if st.Restarts, err = c.restarts(ctx, c.Selector()); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		// Nothing with pods (a chart of ConfigMaps, say): the release's
		// own status is the workload's.
		if rel.Info.Status == deploy.StatusDeployed {
			st.State = StateReady
			return st, nil
		}
	}
	c.summarize(ctx, st, rel, all, c.Selector())
	return st, nil
}

// Restart rolls every Deployment of the release: those its manifest
// holds, else (releases not readable) those labelled with the release.
func (c *Chart) Restart(ctx context.Context) error {
	var names []string
	if c.c.Releases != nil {
		rel, err := c.c.Releases.Get(ctx, c.release, c.c.Namespace)
		var nf *deploy.NotFoundError
		if errors.As(err, &nf) {
			return &NotRunningError{Msg: fmt.Sprintf("%s is not deployed in namespace %s; run `skiff deploy %s` first", c.w.Name, c.c.Namespace, c.w.Name)}
		}
		if err != nil {
			return err
		}
		if names, err = deployments(rel.Manifest); err != nil {
			return fmt.Errorf("reading the manifest of %s: %w", c.release, err)
		}
	} else {
		list, err := c.c.Clientset.AppsV1().Deployments(c.c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: c.Selector()})
		if err != nil {
			return err
		}
		for _, d := range list.Items {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return &NotRunningError{Msg: fmt.Sprintf("%s has no Deployment in namespace %s to restart", c.w.Name, c.c.Namespace)}
	}
	for _, n := range names {
		if err := restartDeployment(ctx, &c.base, n); err != nil {
			return err
		}
	}
	return nil
}

// Wait watches the Deployments of rel roll out (it returns as soon as the
// last pod is ready), then checks every other resource as Helm would, and
// an exposed workload's route and certificate.
func (d *Deployment) Wait(ctx context.Context, rel *deploy.Record) error {
	if err := WaitRolledOut(ctx, d.c.Clientset, rel); err != nil {
		return err
	}
	if err := d.waitResources(ctx, rel); err != nil {
		return err
	}
	return d.waitExposed(ctx, rel)
}

// Wait waits for every resource of the chart as Helm's checks see them
// (it may hold any kind), else for its Deployments to roll out.
func (c *Chart) Wait(ctx context.Context, rel *deploy.Record) error {
	if c.c.Releases == nil {
		return WaitRolledOut(ctx, c.c.Clientset, rel)
	}
	return c.waitResources(ctx, rel)
}
