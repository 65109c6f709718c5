// Package cluster is `skiff dev`'s runner on the cluster (Cluster, on a
// pipeline.Session): the builds, the releases with dev's chart settings
// and the pull Secret, live sync into running pods (sync.go), a forward
// per workload and the releases to restore. package factory opens it and
// hands it to `skiff dev` as engine.DevRunner (cmdutil.Factory.DevCluster),
// so that the command layer imports neither pipeline nor target.
package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
)

// Runner is the cluster runner with its forwards.
type Runner struct {
	*Cluster
	sess      *pipeline.Session
	workloads []project.Workload
}

var _ engine.DevRunner = (*Runner)(nil)

// Open checks cfg.Build, makes the namespace and the pull Secret, and
// reads the releases of cfg.Workloads, to restore them.
func Open(ctx context.Context, sess *pipeline.Session, cfg engine.DevConfig) (*Runner, error) {
	builds, err := pipeline.NewBuilds(cfg.Build)
	if err != nil {
		return nil, err
	}
	if err := sess.EnsureNamespace(ctx); err != nil {
		return nil, err
	}
	pull, err := sess.EnsurePullSecret(ctx, cfg.Workloads, cfg.Pull)
	if err != nil {
		return nil, err
	}
	cl := &Cluster{Project: cfg.Project, Root: cfg.Root, Builds: *builds, History: sess.Deployer,
		Releases: sess.Releases(pipeline.WithPullSecret(ChartSettings(), pull), cfg.Timeout),
		URLs:     map[string]string{}, Events: cfg.Events}
	if cfg.SyncImage != "" {
		cl.SyncImage, cl.Syncer, cl.SyncTimeout = cfg.SyncImage, &KubeSyncer{Client: sess.Kube}, cfg.Timeout
	}
	names := make([]string, len(cfg.Workloads))
	for i, w := range cfg.Workloads {
		names[i] = w.Name
	}
	if err := cl.Snapshot(ctx, names); err != nil {
		return nil, err
	}
	return &Runner{Cluster: cl, sess: sess, workloads: cfg.Workloads}, nil
}

// Forward starts a forward per workload on a stable loopback port and
// records its URL; stop closes them all. Call it before the loop runs.
func (r *Runner) Forward(ctx context.Context) (stop func(), err error) {
	var fws []*target.Following
	stop = func() {
		for _, f := range fws {
			_ = f.Close()
		}
	}
	for _, w := range r.workloads {
		ln, err := listenStable(w.Port)
		if err != nil {
			stop()
			return nil, err
		}
		fws = append(fws, target.Follow(ctx, r.sess.Kube, r.sess.Namespace(), r.sess.Targets.For(&w), ln))
		r.URLs[w.Name] = "http://" + ln.Addr().String()
	}
	return stop, nil
}

// listenStable listens on 127.0.0.1 at the workload's port plus 10000 (a
// port the user can keep in a browser tab), or the next free one.
func listenStable(port int) (net.Listener, error) {
	first := port + 10000
	if first > 65535-20 {
		first = 18080
	}
	var lastErr error
	for p := first; p < first+20; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free local port from %d to %d for a port-forward: %w", first, first+19, lastErr)
}
