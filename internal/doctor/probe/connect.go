package probe

import (
	"context"
	"runtime"
	"slices"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
)

// ClusterChecks are the checks that need p's cluster (the kubeconfig's
// context kubeContext, "": its current one): reach, access (needs),
// Pod Security, NetworkPolicy enforcement, the nodes' architectures, the serverless engines scaled
// workloads need and the settings their wakes from zero wait on, and the bus. They share one connection and one answer
// to whether the cluster answers at all. needsErr says why needs could not
// be known (the chart does not render): the access check fails with it.
func ClusterChecks(p *project.Project, kubeconfig, kubeContext string, needs []doctor.Access, needsErr error) []doctor.Check {
	kc, err := kube.New(kube.Options{Kubeconfig: kubeconfig, Context: kubeContext})
	if err != nil {
		return []doctor.Check{{Name: "cluster", Run: func(context.Context) doctor.Result {
			return doctor.Result{Status: doctor.Fail, Detail: err.Error(), Fix: "point KUBECONFIG or --kubeconfig at a kubeconfig with the cluster"}
		}}}
	}
	// The access reviews go at once: client-go's default rate limit (5
	// requests a second) would queue them for seconds.
	cfg := rest.CopyConfig(kc.REST)
	cfg.QPS, cfg.Burst = 100, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return []doctor.Check{{Name: "cluster", Run: func(context.Context) doctor.Result {
			return doctor.Result{Status: doctor.Fail, Detail: err.Error()}
		}}}
	}
	c := &Cluster{Clientset: cs, Host: kc.REST.Host, Context: kc.ContextName, Namespace: p.Namespace,
		Ping: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, doctor.Reach)
			defer cancel()
			return kc.Ping(ctx)
		}}
	platforms := p.Build.Platforms
	if len(platforms) == 0 {
		platforms = []string{"linux/" + runtime.GOARCH}
	}
	access := c.RBAC(needs)
	if needsErr != nil {
		access.Run = func(context.Context) doctor.Result {
			return doctor.Fails("cannot tell what deploy does: "+needsErr.Error(), "`skiff render` shows the chart's error")
		}
	}
	checks := []doctor.Check{c.Reach(), access, c.PodSecurity(), c.NetworkPolicy(p.NetworkPolicy()), c.Architectures(platforms)}
	if slices.ContainsFunc(p.Workloads, func(w project.Workload) bool { return w.Scale != nil }) {
		tc := &target.Cluster{Clientset: kc.Clientset, Dynamic: kc.Dynamic, Namespace: p.Namespace, Project: p}
		checks = append(checks, c.Engines(func(ctx context.Context) error { return tc.CheckKEDA(ctx, p.Workloads) }),
			c.Wake(tc.WakeSettings))
	}
	if len(p.ExposedWorkloads()) > 0 {
		tc := &target.Cluster{Clientset: kc.Clientset, Dynamic: kc.Dynamic, Namespace: p.Namespace, Project: p}
		checks = append(checks, c.Edge(func(ctx context.Context) (*target.EdgeFindings, error) { return tc.CheckGateways(ctx, p.Workloads) }))
	}
	return checks
}
