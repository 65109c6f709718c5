// Package factory builds the cmdutil.Factory a real process runs with: it
// is where the concrete session (pipeline.Session on client-go and Helm)
// is made and put behind engine.Session, the dashboard's backend on it
// (tui/cluster) and dev's runner on it (dev/cluster) are built, dev
// --local's bus (dev/localbus) is started, and doctor's probes of the
// registry and the cluster are chosen, so that the command layer
// (internal/cli) imports none of them. cmd/skiff and the command line's
// tests use it.
package factory

import (
	"context"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/deploy"
	devcluster "github.com/skiffdev/skiff/internal/dev/cluster"
	"github.com/skiffdev/skiff/internal/dev/localbus"
	"github.com/skiffdev/skiff/internal/doctor/probe"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/publish/registry"
	"github.com/skiffdev/skiff/internal/tui"
	"github.com/skiffdev/skiff/internal/tui/cluster"
)

// New returns the Factory of a real process: cmdutil.New's, with sessions
// on the clusters of the kubeconfig that --kubeconfig names and doctor's
// probes.
func New(ios *iostreams.IOStreams, getenv func(string) string) *cmdutil.Factory {
	f := cmdutil.New(ios, getenv)
	f.Session = Sessions(Dial(f.Globals), getenv)
	f.Probes = probe.Checks
	f.Bus = func(ctx context.Context, cfg engine.SessionConfig) (engine.Bus, error) {
		files := (&pipeline.Pipeline{Project: cfg.Project, Root: cfg.Root, Getenv: getenv}).BusFiles()
		return pipeline.OpenBus(ctx, cfg.Project, pipeline.BusAuth(files), func(ctx context.Context) (*pipeline.Session, error) {
			s, err := f.Session(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return pipeline.Unwrap(s)
		})
	}
	f.LocalBus = pipeline.OpenLocalBus
	f.Builder = pipeline.Builder
	f.Render = func(ctx context.Context, cfg engine.RenderConfig) ([]engine.Rendered, error) {
		return (&pipeline.Pipeline{Project: cfg.Project, Root: cfg.Root}).Render(ctx, cfg.Workloads, cfg.Images, cfg.Overrides)
	}
	f.ChartValues = pipeline.UserValues
	f.Registry = func(insecure []string, userAgent string) (engine.Registry, error) {
		return registry.New(registry.Options{Insecure: insecure, UserAgent: userAgent})
	}
	f.Verifier = pipeline.Verifier
	f.Dashboard = func(s engine.Session, cfg tui.ClusterConfig) (tui.Cluster, error) {
		ps, err := pipeline.Unwrap(s) // the backend watches the session's cluster itself
		if err != nil {
			return nil, err
		}
		return cluster.New(cluster.Config{Session: ps, ClusterConfig: cfg}), nil
	}
	f.DevCluster = func(ctx context.Context, s engine.Session, cfg engine.DevConfig) (engine.DevRunner, error) {
		ps, err := pipeline.Unwrap(s) // dev's runner drives the session's releases itself
		if err != nil {
			return nil, err
		}
		return devcluster.Open(ctx, ps, cfg)
	}
	f.DevLocalBus = func(ctx context.Context, cfg engine.DevBusConfig) (engine.DevBus, error) {
		b, err := localbus.Start(ctx, cfg)
		if err != nil {
			return nil, err // not a nil *Bus in a non-nil interface
		}
		return b, nil
	}
	return f
}

// Connect reaches the cluster of a kubeconfig context ("": the current
// one) and returns its client and a Helm deployer for it; logf receives
// Helm's log (nil: nowhere).
type Connect func(ctx context.Context, kubeContext string, logf func(string, ...any)) (*kube.Client, *deploy.Deployer, error)

// Dial is the real Connect: the kubeconfig of g.Kubeconfig (read when a
// command connects, after its flags are parsed), checked to answer.
func Dial(g *cmdutil.GlobalOptions) Connect {
	return func(ctx context.Context, kubeContext string, logf func(string, ...any)) (*kube.Client, *deploy.Deployer, error) {
		kc, err := kube.New(kube.Options{Kubeconfig: g.Kubeconfig, Context: kubeContext})
		if err != nil {
			return nil, nil, err
		}
		if err := kc.Ping(ctx); err != nil {
			return nil, nil, err
		}
		return kc, deploy.ForCluster(kc, logf), nil
	}
}

// Sessions returns a Factory's Session: the project's pipeline.Session on
// the cluster connect reaches.
func Sessions(connect Connect, getenv func(string) string) func(context.Context, engine.SessionConfig) (engine.Session, error) {
	return func(ctx context.Context, cfg engine.SessionConfig) (engine.Session, error) {
		kc, d, err := connect(ctx, cfg.KubeContext, cfg.HelmLog)
		if err != nil {
			return nil, err
		}
		pl := &pipeline.Pipeline{Project: cfg.Project, Root: cfg.Root, Events: cfg.Events, Getenv: getenv}
		return pipeline.NewSession(pl, kc, d).Engine(), nil
	}
}
