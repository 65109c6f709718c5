package pipeline

import (
	"context"
	"errors"
	"io"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// The session as the command layer sees it plans from what its Deployer
// ran, deploys with the pull Secret among the values, and unwraps to the
// session it was made from (and only that).
func TestEngineSession(t *testing.T) {
	ctx := context.Background()
	p := &project.Project{Name: "shop", Namespace: "shop", Registry: "r.example/acme",
		Workloads: []project.Workload{{Name: "orders", Kind: "service", Lang: "go", Port: 8080}}}
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()), KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}
	d := &deploy.Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}
	s := NewSession(&Pipeline{Project: p, Root: t.TempDir()}, &kube.Client{Clientset: fake.NewClientset()}, d)
	defer s.Close()
	d.Wait = func(context.Context, *deploy.Record) error { return nil }
	es := s.Engine()

	_, _, err := es.Plan(ctx, p.Workloads, nil, true)
	var none *engine.NoDeployedImageError
	if !errors.As(err, &none) || none.Workload != "orders" {
		t.Fatalf("plan before a deploy: %v", err)
	}
	image := "r.example/acme/orders@sha256:" + "1234567890ab"
	out, err := es.Deploy(ctx, engine.DeployOptions{Overrides: map[string]any{"replicas": 2}, PullSecret: "shop-pull"}, p.Workloads, map[string]string{"orders": image})
	if err != nil || len(out) != 1 || out[0].Revision != 1 || out[0].Image != image {
		t.Fatalf("deploy: %+v, %v", out, err)
	}
	rel, err := d.Get(ctx, "shop-orders", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if img, _ := rel.Config["image"].(map[string]any); rel.Config["replicas"] != 2 || img["pullSecret"] != "shop-pull" {
		t.Errorf("values %v", rel.Config)
	}
	images, build, err := es.Plan(ctx, p.Workloads, nil, true)
	if err != nil || images["orders"] != image || len(build) != 0 {
		t.Errorf("plan after a deploy: %v %v %v", images, build, err)
	}
	if got, err := Unwrap(es); err != nil || got != s {
		t.Errorf("unwrap: %p %v, want %p", got, err, s)
	}
	if _, err := Unwrap(struct{ engine.Session }{}); err == nil {
		t.Error("a session of another kind unwraps")
	}
}
