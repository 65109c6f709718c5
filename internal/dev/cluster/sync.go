package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/devsync"
	"github.com/skiffdev/skiff/internal/devsync/imagedir"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
)

// Live updates: when a cycle's new image differs from what the pods run in
// its app folder alone, and the release's values are the same, dev puts
// the new files into the running pods (package devsync) instead of
// rolling out new ones. Anything else (a new base, environment, settings,
// a pod that started since the last sync) takes a rollout.

// SyncPort is where skiff-relay supervise answers in dev's pods.
const SyncPort = 9092

// PodSyncer puts a patch into the running pods of a release.
type PodSyncer interface {
	// Sync sends patch to every running pod of release in ns. It returns
	// ErrStale when there is no pod, or one that runs another version
	// than the patch's (a pod that started since), and a *SyncError when
	// the new version did not get ready in a pod (its old one serves
	// again there).
	Sync(ctx context.Context, ns, release string, patch []byte) error
}

// ErrStale says a patch does not fit the pods: a rollout is needed.
var ErrStale = errors.New("the pods do not run the version the patch is from")

// SyncError is a new version that did not get ready in a pod.
type SyncError struct {
	Pod    string
	Result devsync.Result
	// Kept is how many other pods kept the new version: the release's
	// pods then run two versions, until a rollout.
	Kept int
}

func (e *SyncError) Error() string {
	return fmt.Sprintf("in pod %s: %s; the pod serves the version before it again", e.Pod, e.Result.Error)
}

// SyncValues are the chart values of a release dev can sync: the
// workload runs under skiff-relay supervise (image) with the built image's
// entrypoint and arguments.
func SyncValues(image string, img v1.Image, readyTimeout time.Duration) (map[string]any, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cmd := append(append([]string(nil), cf.Config.Entrypoint...), cf.Config.Cmd...)
	if len(cmd) == 0 {
		return nil, errors.New("the image has no entrypoint")
	}
	args := make([]any, len(cmd))
	for i, a := range cmd {
		args[i] = a
	}
	if readyTimeout <= 0 {
		readyTimeout = time.Minute
	}
	return map[string]any{"dev": map[string]any{"sync": map[string]any{
		"enabled": true, "image": image, "command": args, "port": SyncPort, "readyTimeout": readyTimeout.String()}}}, nil
}

// live is what dev knows of a release it can sync (whose fingerprint is
// Cluster.deployed's).
type live struct {
	pull  string   // the release's image: what a new pod runs
	built v1.Image // what the pods run now
	ref   string   // its reference: the pods' version
	tree  devsync.Tree
}

// newLive records a release just rolled out with img.
func newLive(pull string, img v1.Image) (*live, error) {
	tree, err := devsync.TreeOf(imagedir.Folder{Image: img, Dir: build.AppDir})
	if err != nil {
		return nil, err
	}
	return &live{pull: pull, built: img, ref: pull, tree: tree}, nil
}

// trySync syncs img into the pods of w when it can. done says whether the
// cycle is over (synced, unchanged, or the new version failed in a pod);
// when not, a rollout follows.
//
// A rollout after syncs must replace the pods even when the release's
// image and values are what they were (the developer undid an edit): the
// pods run other files than the release's image. Cycle sees to that with
// a generation annotation (GenerationAnnotation).
func (c *Cluster) trySync(ctx context.Context, pl *pipeline.Pipeline, w *project.Workload, st *live, img pipeline.Image,
	overrides map[string]any, steps map[string]time.Duration, start time.Time) (done bool) {
	if st == nil || img.Built == nil || c.Syncer == nil {
		return false
	}
	// The same release but for the image?
	key, err := fingerprint(st.pull, pl.Values(w, st.pull, overrides))
	c.mu.Lock()
	deployed := c.deployed[w.Name]
	c.mu.Unlock()
	if err != nil || key != deployed {
		return false
	}
	same, err := imagedir.SameOutside(st.built, img.Built, build.AppDir)
	if err != nil || !same {
		return false
	}
	to, err := devsync.TreeOf(imagedir.Folder{Image: img.Built, Dir: build.AppDir})
	if err != nil {
		return false
	}
	patch := devsync.Diff(st.tree, to)
	patch.From, patch.To = st.ref, img.Pull
	if patch.Empty() {
		c.reachable(w.Name)
		c.Events.Emit(event.Event{Kind: event.Unchanged, Workload: w.Name, URL: c.URL(w.Name), Duration: time.Since(start), Steps: steps})
		return true
	}
	var buf bytes.Buffer
	if err := devsync.WritePatch(&buf, imagedir.Folder{Image: img.Built, Dir: build.AppDir}, patch); err != nil {
		return false
	}
	t := time.Now()
	err = c.Syncer.Sync(ctx, pl.Project.Namespace, pl.Release(w), buf.Bytes())
	var se *SyncError
	switch {
	case err == nil:
		steps["sync"] = time.Since(t)
		c.mu.Lock()
		st.built, st.ref, st.tree = img.Built, img.Pull, to
		c.mu.Unlock()
		c.reachable(w.Name)
		c.Events.Emit(event.Event{Kind: event.Ready, Workload: w.Name, URL: c.URL(w.Name), Release: pl.Release(w),
			Duration: time.Since(start), Steps: steps})
		return true
	case errors.As(err, &se):
		if se.Kept > 0 {
			// Some pods run the new version, some the old: no patch fits
			// them all, so the next cycle rolls out.
			c.mu.Lock()
			st.ref = ""
			c.mu.Unlock()
		}
		c.reachable(w.Name)
		c.Events.Emit(event.Event{Kind: event.Failed, Phase: event.PhaseCycle, Workload: w.Name, Error: se.Error(), Output: se.Result.Output, Duration: time.Since(start)})
		return true
	}
	return false // stale or unreachable pods: a rollout
}

// KubeSyncer is the PodSyncer of a cluster: a port-forward to each pod's
// supervisor.
type KubeSyncer struct {
	Client *kube.Client
	// Port is the supervisor's (0: SyncPort).
	Port int
}

// Sync implements PodSyncer.
func (k *KubeSyncer) Sync(ctx context.Context, ns, release string, patch []byte) error {
	pods, err := k.Client.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: chart.Selector(release)})
	if err != nil {
		return err
	}
	var running []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return ErrStale
	}
	port := k.Port
	if port == 0 {
		port = SyncPort
	}
	errs := make([]error, len(running))
	var wg sync.WaitGroup
	for i, p := range running {
		wg.Go(func() {
			f, err := k.Client.ForwardPort(ctx, ns, p.Name, port)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			res, code, err := devsync.Push(ctx, http.DefaultClient, "http://"+f.Addr, patch)
			switch {
			case err != nil:
				errs[i] = err
			case code == http.StatusConflict:
				errs[i] = ErrStale
			case code == http.StatusUnprocessableEntity:
				errs[i] = &SyncError{Pod: p.Name, Result: res}
			case code != http.StatusOK:
				errs[i] = fmt.Errorf("pod %s refused the patch (%d): %s", p.Name, code, strings.TrimSpace(res.Error))
			}
		})
	}
	wg.Wait()
	kept := 0
	for _, err := range errs {
		if err == nil {
			kept++
		}
	}
	// A failed version first: it is what the developer needs to see.
	for _, err := range errs {
		if se := (*SyncError)(nil); errors.As(err, &se) {
			se.Kept = kept
			return se
		}
	}
	return errors.Join(errs...)
}
