package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"net/url"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/metrics"
	"github.com/skiffdev/skiff/internal/project"
)

// Stats reads how each workload of ws served over o.Window: from a
// Prometheus when o or the project names one, else from each ready pod's
// skiff-relay through the API server.
func (s *Session) Stats(ctx context.Context, ws []project.Workload, o engine.StatsOptions) ([]engine.WorkloadStats, error) {
	window := cmp.Or(o.Window, engine.DefaultWindow)
	r, err := s.statsReader(o.Prometheus)
	if err != nil {
		return nil, err
	}
	ts := make([]metrics.Target, 0, len(ws))
	for _, t := range s.Targets.All(ws) {
		// The base chart names the Deployment after the workload.
		ts = append(ts, metrics.Target{Workload: t.Workload(), Selector: t.Selector(), Deployment: t.Workload()})
	}
	return r.Read(ctx, ts, window)
}

// statsReader is the Prometheus named by flag, else by the project's
// metrics.prometheus, else the pods. A Prometheus that is a Service of
// the cluster (NAME.NAMESPACE.svc) is asked through the API server.
func (s *Session) statsReader(flag string) (metrics.Reader, error) {
	raw := cmp.Or(flag, s.Project.Metrics.PrometheusURL())
	if raw == "" {
		return &metrics.Pods{Client: s.Kube.Clientset, Namespace: s.Namespace()}, nil
	}
	if why := project.CheckPrometheusURL(raw); why != "" {
		return nil, fmt.Errorf("the Prometheus to read from: %s", why)
	}
	u, _ := url.Parse(raw)
	get, ok := metrics.ServiceGetter(s.Kube.Clientset, u)
	if !ok {
		get = metrics.HTTPGetter(raw, nil)
	}
	return &metrics.Prometheus{Get: get, Namespace: s.Namespace()}, nil
}
