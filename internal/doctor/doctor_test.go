package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Checks run at once: the whole run takes as long as the slowest check,
// results keep their order, and a check that hangs fails with a message.
func TestRunConcurrentlyInOrder(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 3)
	check := func(name string, wait bool) Check {
		return Check{Name: name, Run: func(ctx context.Context) Result {
			started <- name
			if wait {
				<-ctx.Done() // hangs until its deadline
			}
			<-release
			return ok(name + " is fine")
		}}
	}
	done := make(chan []Result)
	go func() {
		done <- Run(context.Background(), 200*time.Millisecond, []Check{check("a", false), check("b", true), check("c", false)})
	}()
	for range 3 { // all three start before any is let go: they run at once
		<-started
	}
	close(release)
	rs := <-done
	if rs[0].Check != "a" || rs[1].Check != "b" || rs[2].Check != "c" {
		t.Fatalf("order = %v", rs)
	}
	if rs[0].Status != OK || rs[2].Status != OK {
		t.Errorf("a, c = %+v, %+v", rs[0], rs[2])
	}
	if rs[1].Status != Fail || !strings.Contains(rs[1].Detail, "no answer within 200ms") {
		t.Errorf("the hung check = %+v", rs[1])
	}
	if !Failed(rs) || Failed(rs[:1]) {
		t.Error("Failed does not tell")
	}
}

func TestToolchain(t *testing.T) {
	ctx := context.Background()
	fakeRun := func(have map[string]string) Runner {
		return func(_ context.Context, name string, args ...string) (string, error) {
			cmd := strings.Join(append([]string{name}, args...), " ")
			if out, ok := have[cmd]; ok {
				return out, nil
			}
			if _, ok := have[name]; ok {
				return "", errors.New("exit status 1: No module named pip")
			}
			return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
		}
	}
	r := Toolchain("go", []string{"orders"}, fakeRun(map[string]string{"go env GOVERSION": "go1.26.8"})).Run(ctx)
	if r.Status != OK || r.Detail != "go1.26.8" {
		t.Errorf("go = %+v", r)
	}
	r = Toolchain("node", []string{"front", "api"}, fakeRun(map[string]string{"node --version": "v20.1.0"})).Run(ctx)
	if r.Status != Fail || r.Detail != "npm is not installed (needed by front, api)" || !strings.Contains(r.Fix, "npm") {
		t.Errorf("node without npm = %+v", r)
	}
	r = Toolchain("python", []string{"thumbs"}, fakeRun(map[string]string{"python3 --version": "Python 3.11.2", "python3": ""})).Run(ctx)
	if r.Status != Fail || !strings.Contains(r.Detail, "`python3 -m pip --version` failed") || !strings.Contains(r.Fix, "ensurepip") {
		t.Errorf("python without pip = %+v", r)
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	reg := registry.New()
	// A registry that wants user "ci" with password "right" for anything.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "right" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/shop/orders", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	from := func(string) string { return "a test keychain" }
	for _, tc := range []struct {
		name   string
		kc     authn.Keychain
		source func(string) string
		status Status
		want   string
	}{
		{"right password", keychain{"ci", "right"}, from, OK, "may push to " + repo.String() + " (credentials: a test keychain)"},
		{"wrong password", keychain{"ci", "wrong"}, from, Fail, "refused the credentials from a test keychain for a push"},
		{"no credentials", authn.NewMultiKeychain(), func(string) string { return "" }, Fail, "wants credentials to push to " + repo.String() + ", and there are none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Registry(repo, tc.kc, http.DefaultTransport, tc.source).Run(ctx)
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
				t.Errorf("result = %+v, want %s with %q", r, tc.status, tc.want)
			}
			if tc.status == Fail && !strings.Contains(r.Fix, "docker login "+repo.RegistryStr()) {
				t.Errorf("fix = %q", r.Fix)
			}
		})
	}
	// Nothing listens: said as unreachable.
	gone, _ := name.NewRepository("127.0.0.1:1/shop/orders", name.Insecure)
	if r := Registry(gone, authn.NewMultiKeychain(), http.DefaultTransport, from).Run(ctx); r.Status != Fail || !strings.Contains(r.Detail, "cannot reach 127.0.0.1:1") {
		t.Errorf("unreachable registry = %+v", r)
	}
}

type keychain struct{ user, pass string }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestClusterChecks(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"kubernetes.io/arch": "amd64"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"kubernetes.io/arch": "arm64"}}},
	)
	// The user may do anything but delete secrets.
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = !(ra.Resource == "secrets" && ra.Verb == "delete") && ra.Namespace == "shop"
		return true, r, nil
	})
	c := &Cluster{Clientset: cs, Host: "https://k", Context: "test", Namespace: "shop", Ping: func(context.Context) error { return nil }}

	needs := []Access{{"", "secrets", "get", true}, {"", "secrets", "delete", true}, {"", "pods/portforward", "create", true}}
	if r := c.RBAC(needs).Run(ctx); r.Status != Fail || r.Detail != "may not delete secrets in namespace shop" {
		t.Errorf("rbac = %+v", r)
	}
	if r := c.RBAC(needs[:1]).Run(ctx); r.Status != OK {
		t.Errorf("rbac allowed = %+v", r)
	}
	if r := c.PodSecurity().Run(ctx); r.Status != OK || !strings.Contains(r.Detail, "enforces restricted") {
		t.Errorf("pod security = %+v", r)
	}
	for _, tc := range []struct {
		platforms []string
		status    Status
		want      string
	}{
		{[]string{"linux/amd64", "linux/arm64"}, OK, "nodes: 1 amd64, 1 arm64"},
		{[]string{"linux/amd64"}, Warn, "pods scheduled on arm64 nodes would not start"},
		{[]string{"linux/riscv64"}, Fail, "no node can run the images"},
	} {
		if r := c.Architectures(tc.platforms).Run(ctx); r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("architectures %v = %+v", tc.platforms, r)
		}
	}
	if r := c.Engines(func(context.Context) error { return fmt.Errorf("no KEDA") }).Run(ctx); r.Status != Fail || r.Detail != "no KEDA" {
		t.Errorf("engines = %+v", r)
	}
	if r := c.Bus(func(context.Context) (string, error) { return "", fmt.Errorf("the bus has no JetStream") }).Run(ctx); r.Status != Fail ||
		r.Detail != "the bus has no JetStream" || !strings.Contains(r.Fix, "--jetstream") {
		t.Errorf("bus = %+v", r)
	}
	if r := c.Bus(func(context.Context) (string, error) { return "JetStream on", nil }).Run(ctx); r.Status != OK || r.Detail != "JetStream on" {
		t.Errorf("bus = %+v", r)
	}

	// A cluster that does not answer is said once; the rest skip.
	pings := 0
	down := &Cluster{Clientset: cs, Namespace: "shop", Ping: func(context.Context) error { pings++; return errors.New("cannot reach the cluster") }}
	rs := Run(ctx, time.Second, []Check{down.Reach(), down.RBAC(needs), down.PodSecurity(), down.Architectures([]string{"linux/amd64"})})
	if rs[0].Status != Fail || rs[0].Detail != "cannot reach the cluster" {
		t.Errorf("reach = %+v", rs[0])
	}
	for _, r := range rs[1:] {
		if r.Status != Skip {
			t.Errorf("%s on a cluster that does not answer = %+v", r.Check, r)
		}
	}
	if pings != 1 {
		t.Errorf("pinged %d times, want once", pings)
	}
}

func TestPullAccess(t *testing.T) {
	ctx := context.Background()
	open := func(context.Context) (bool, error) { return true, nil }
	closed := func(context.Context) (bool, error) { return false, nil }
	broken := func(context.Context) (bool, error) { return false, errors.New("timeout") }
	have := func() error { return nil }
	none := func() error { return errors.New("no credentials") }
	for _, tc := range []struct {
		name, mode string
		anon       func(context.Context) (bool, error)
		creds      func() error
		status     Status
		want       string
	}{
		{"public", "auto", open, none, OK, "pods need no pull secret"},
		{"private with credentials", "auto", closed, have, OK, "deploy keeps a pull secret"},
		{"private without credentials", "auto", closed, none, Fail, "no credentials to make it from"},
		{"always a secret", "pull-secret", open, none, Fail, "no credentials to make it from"},
		{"nodes on their own", "none", closed, none, Skip, "registryAuth: none"},
		{"cannot ask", "auto", broken, have, Warn, "could not ask"},
	} {
		r := PullAccess("reg.example/shop/orders", tc.mode, tc.anon, tc.creds).Run(ctx)
		if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
}
