package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/project"
)

// The public URL the target reads goes into the deploy's result and its
// deployed event (the summary and -o json show it).
func TestDeployReportsThePublicURL(t *testing.T) {
	p := testProject(t)
	ev := &events{}
	pl := &Pipeline{Project: p, Root: t.TempDir(), Events: ev.add}
	r := Releases{Releaser: &fakeReleaser{}, Timeout: time.Minute,
		Readiness: func(_ context.Context, w *project.Workload) (*Readiness, error) {
			url := ""
			if w.Name == "c" {
				url = "https://c.shop.example.com/"
			}
			return &Readiness{Ready: 1, Desired: 1, Endpoint: "http://" + w.Name + ".shop.svc.cluster.local:8080", URL: url}, nil
		}}
	c, _ := p.Workload("c")
	got, err := pl.Deploy(context.Background(), r, []project.Workload{*c}, map[string]string{"c": "x@sha256:c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].URL != "https://c.shop.example.com/" {
		t.Fatalf("deployed %+v, want c with its URL", got)
	}
	for _, e := range ev.all {
		if e.Kind == "deployed" && e.URL != "https://c.shop.example.com/" {
			t.Errorf("deployed event URL = %q", e.URL)
		}
	}
}
