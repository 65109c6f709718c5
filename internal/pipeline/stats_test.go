package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/metrics"
	"github.com/skiffdev/skiff/internal/project"
)

// The figures come from --prometheus, else metrics.prometheus, else the
// pods.
func TestStatsReader(t *testing.T) {
	p := &project.Project{Name: "shop", Namespace: "shop"}
	s := &Session{Pipeline: &Pipeline{Project: p}, Kube: &kube.Client{Clientset: fake.NewClientset()}}
	r, err := s.statsReader("")
	if _, ok := r.(*metrics.Pods); !ok || err != nil {
		t.Errorf("no Prometheus: %T %v", r, err)
	}
	p.Metrics = &project.Metrics{Prometheus: "http://prometheus.monitoring.svc:9090"}
	r, err = s.statsReader("")
	if pr, ok := r.(*metrics.Prometheus); !ok || err != nil || pr.Namespace != "shop" {
		t.Errorf("metrics.prometheus: %T %v", r, err)
	}
	// --prometheus wins over metrics.prometheus: this one is asked.
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked++
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	r, err = s.statsReader(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(context.Background(), []metrics.Target{{Workload: "orders", Deployment: "orders"}}, time.Minute); err != nil || asked == 0 {
		t.Errorf("--prometheus not asked: %v", err)
	}
	if _, err := s.statsReader("prometheus:9090"); err == nil {
		t.Error("a URL that is none read")
	}
}
