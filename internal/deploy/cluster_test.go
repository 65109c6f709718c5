package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	skiffkube "github.com/skiffdev/skiff/internal/kube"
)

// validations records the validate argument of every KubeClient.Build.
type validations struct {
	*kubefake.FailingKubeClient
	got []bool
}

func (v *validations) Build(r io.Reader, validate bool) (kube.ResourceList, error) {
	v.got = append(v.got, validate)
	return v.FailingKubeClient.Build(r, validate)
}

func TestServerValidatesSkipsHelmsClientSideCheck(t *testing.T) {
	for _, serverValidates := range []bool{false, true} {
		t.Run(fmt.Sprint("ServerValidates=", serverValidates), func(t *testing.T) {
			f := newFixture(t)
			v := &validations{FailingKubeClient: f.kube}
			f.cfg.KubeClient = v
			f.d.ServerValidates = serverValidates
			ctx := context.Background()
			for _, img := range []string{"img@sha256:1", "img@sha256:2"} { // an install, then an upgrade
				if _, err := f.d.Deploy(ctx, release1(t, img), "orders"); err != nil {
					t.Fatal(err)
				}
			}
			validated := 0
			for _, validate := range v.got {
				if validate {
					validated++
				}
			}
			// Helm checks the new manifest of an install and of an upgrade
			// (it reads the one running unchecked).
			if serverValidates && validated > 0 {
				t.Errorf("%d of %d Builds checked the manifest on a server that validates", validated, len(v.got))
			}
			if !serverValidates && validated < 2 {
				t.Errorf("%d of %d Builds checked the manifest, want the install's and the upgrade's", validated, len(v.got))
			}
		})
	}
}

func TestForClusterSharesHelmsClientsPerNamespace(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"major":"1","minor":"31"}`)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "config")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: %q}}]\n"+
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n", srv.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := skiffkube.New(skiffkube.Options{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	if ForCluster(kc, nil).ServerValidates {
		t.Error("ServerValidates before the cluster was asked its version")
	}
	if err := kc.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := ForCluster(kc, nil)
	if !d.ServerValidates {
		t.Error("ServerValidates = false for Kubernetes 1.31")
	}
	a1, err := d.Config("a")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := d.Config("a")
	b, _ := d.Config("b")
	if a1 == a2 {
		t.Error("two actions share one Configuration; each needs its own")
	}
	if a1.RESTClientGetter != a2.RESTClientGetter {
		t.Error("the clients of namespace a were built twice")
	}
	if a1.RESTClientGetter == b.RESTClientGetter {
		t.Error("namespaces a and b share clients")
	}
	if g, ok := b.RESTClientGetter.(*genericclioptions.ConfigFlags); !ok || *g.Namespace != "b" {
		t.Errorf("namespace b's clients are %T, not for namespace b", b.RESTClientGetter)
	}
}
