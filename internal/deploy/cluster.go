package deploy

import (
	"context"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/kube"
)

// ForCluster returns a Deployer for the cluster of kc, storing releases as
// Secrets (Helm's default) in each release's namespace.
//
// The clients Helm builds from (the kubeconfig read, discovery and REST
// mapping) are made once per namespace and shared by every action of the
// command; each action still gets its own Configuration, so that actions
// may run at once (the dashboard reads statuses while it deploys).
func ForCluster(kc *kube.Client, logf func(string, ...any)) *Deployer {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var mu sync.Mutex
	getters := map[string]*genericclioptions.ConfigFlags{}
	getter := func(namespace string) *genericclioptions.ConfigFlags {
		mu.Lock()
		defer mu.Unlock()
		g, ok := getters[namespace]
		if !ok {
			g = kc.FlagsFor(namespace)
			getters[namespace] = g
		}
		return g
	}
	return &Deployer{
		Clientset:       kc.Clientset,
		ServerValidates: kc.ValidatesFields(),
		Config: func(namespace string) (*action.Configuration, error) {
			cfg := new(action.Configuration)
			if err := cfg.Init(getter(namespace), namespace, "secret", logf); err != nil {
				return nil, err
			}
			return cfg, nil
		},
		Diagnose: func(ctx context.Context, namespace, release string) []kube.PodProblem {
			problems, _ := kube.Diagnose(ctx, kc.Clientset, namespace, chart.Selector(release), 10)
			return problems
		},
	}
}
