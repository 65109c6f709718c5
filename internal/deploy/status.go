package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/kube"
)

// States of a deployed workload.
const (
	StateReady       = "Ready"
	StateProgressing = "Progressing"
	StateDegraded    = "Degraded"
	StateFailed      = "Failed"
	StateNotDeployed = "NotDeployed"
)

// WorkloadStatus is what runs of one workload.
type WorkloadStatus struct {
	Workload  string `json:"workload"`
	Kind      string `json:"kind"`
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Environment is the environment of skiff.yaml the status is of.
	Environment string            `json:"environment,omitempty"`
	Revision    int               `json:"revision,omitempty"`
	Status      string            `json:"releaseStatus,omitempty"` // Helm's
	State       string            `json:"state"`                   // skiff's summary
	Image       string            `json:"image,omitempty"`
	Ready       int32             `json:"ready"`
	Desired     int32             `json:"desired"`
	Restarts    int32             `json:"restarts"`
	Endpoint    string            `json:"endpoint,omitempty"`
	Updated     time.Time         `json:"updated,omitempty"`
	Problems    []kube.PodProblem `json:"problems,omitempty"`
}

// Healthy reports whether the workload is deployed and all its pods ready.
func (s *WorkloadStatus) Healthy() bool { return s.State == StateReady }

// StatusOf reads the release and the pods of a workload. The Deployment
// and Service are named after the workload (skiff's base chart).
func (d *Deployer) StatusOf(ctx context.Context, cs kubernetes.Interface, releaseName, namespace, workload, kind, endpoint string) (*WorkloadStatus, error) {
	st := &WorkloadStatus{Workload: workload, Kind: kind, Release: releaseName, Namespace: namespace, State: StateNotDeployed}
	rel, err := d.Get(releaseName, namespace)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Revision, st.Status, st.Image = rel.Version, rel.Info.Status.String(), ImageOf(rel)
	st.Updated = rel.Info.LastDeployed.Time
	st.Endpoint = endpoint

	dep, err := cs.AppsV1().Deployments(namespace).Get(ctx, workload, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		st.State = StateFailed
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("reading deployment %s: %w", workload, err)
	}
	st.Desired = 1
	if dep.Spec.Replicas != nil {
		st.Desired = *dep.Spec.Replicas
	}
	st.Ready = dep.Status.ReadyReplicas
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: chart.Selector(releaseName)})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			st.Restarts += c.RestartCount
		}
	}
	rolledOut := dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas == st.Desired &&
		dep.Status.Replicas == st.Desired
	switch {
	case rel.Info.Status == release.StatusFailed:
		st.State = StateFailed
	case rel.Info.Status.IsPending():
		st.State = StateProgressing
	case st.Ready == st.Desired && rolledOut:
		st.State = StateReady
	default:
		st.Problems, _ = kube.Diagnose(ctx, cs, namespace, chart.Selector(releaseName), 5)
		st.State = StateProgressing
		for _, p := range st.Problems {
			if p.Fatal() {
				st.State = StateDegraded
			}
		}
	}
	return st, nil
}
