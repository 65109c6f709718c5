package deploy

import (
	"context"

	"helm.sh/helm/v3/pkg/action"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/kube"
)

// ForCluster returns a Deployer for the cluster of kc, storing releases as
// Secrets (Helm's default) in each release's namespace.
func ForCluster(kc *kube.Client, logf func(string, ...any)) *Deployer {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Deployer{
		Clientset: kc.Clientset,
		Config: func(namespace string) (*action.Configuration, error) {
			cfg := new(action.Configuration)
			if err := cfg.Init(kc.FlagsFor(namespace), namespace, "secret", logf); err != nil {
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
