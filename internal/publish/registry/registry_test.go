package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	memregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/publish/publishtest"
	"github.com/skiffdev/skiff/internal/registrytest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countingHandler counts the requests it serves by method.
type countingHandler struct {
	next   http.Handler
	writes atomic.Int32
	fail   func(r *http.Request) bool
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.writes.Add(1)
	}
	if h.fail != nil && h.fail(r) {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	h.next.ServeHTTP(w, r)
}

func newRegistry(t *testing.T) (*countingHandler, string, *Client) {
	t.Helper()
	h := &countingHandler{next: memregistry.New(memregistry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	regs, err := New(Options{Keychain: authn.NewMultiKeychain(), Attempts: 2, Backoff: 1})
	must(t, err)
	return h, strings.TrimPrefix(srv.URL, "http://"), regs
}

func TestRegistryPushTagsLastAndSkipsNoOp(t *testing.T) {
	h, host, regs := newRegistry(t)
	ctx := context.Background()
	p := &Publisher{Prefix: host + "/team", Client: regs}
	a := publishtest.Artifact(t)
	res, err := p.Publish(ctx, a, "hello", "v1")
	must(t, err)
	d, _ := a.Digest()
	if !res.Uploaded || res.Reference != host+"/team/hello:v1@"+d.String() {
		t.Fatalf("result %+v", res)
	}
	desc, err := remote.Head(publishtest.Ref(t, host+"/team/hello:v1"))
	must(t, err)
	if desc.Digest != d {
		t.Fatalf("tag points at %s, want %s", desc.Digest, d)
	}
	sbom, err := remote.Image(publishtest.Ref(t, host+"/team/hello:"+publish.SBOMTag(d)))
	must(t, err)
	layers, _ := sbom.Layers()
	if mt, _ := layers[0].MediaType(); len(layers) != 1 || mt != build.SBOMMediaType {
		t.Fatalf("SBOM image: %d layers, media type %s", len(layers), mt)
	}

	before := h.writes.Load()
	res, err = p.Publish(ctx, a, "hello", "v1")
	must(t, err)
	if res.Uploaded || h.writes.Load() != before {
		t.Fatalf("a no-op push wrote %d times (uploaded=%v)", h.writes.Load()-before, res.Uploaded)
	}
}

func TestRegistryFailedPushKeepsTheTag(t *testing.T) {
	h, host, regs := newRegistry(t)
	ctx := context.Background()
	p := &Publisher{Prefix: host, Client: regs}
	old := publishtest.Artifact(t)
	_, err := p.Publish(ctx, old, "hello", "latest")
	must(t, err)
	oldDigest, _ := old.Digest()

	h.fail = func(r *http.Request) bool { return r.Method == http.MethodPatch || r.Method == http.MethodPut }
	_, err = p.Publish(ctx, publishtest.Artifact(t), "hello", "latest")
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("got %v, want a 500 error", err)
	}
	h.fail = nil
	desc, err := remote.Head(publishtest.Ref(t, host+"/hello:latest"))
	must(t, err)
	if desc.Digest != oldDigest {
		t.Fatalf("the failed push moved the tag to %s", desc.Digest)
	}
}

func TestRegistryRefusedAuthSaysLogIn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	regs, err := New(Options{Keychain: authn.NewMultiKeychain(), Attempts: 1, Backoff: 1})
	must(t, err)
	host := strings.TrimPrefix(srv.URL, "http://")
	_, err = (&Publisher{Prefix: host, Client: regs}).Publish(context.Background(), publishtest.Artifact(t), "hello", "latest")
	if err == nil || !strings.Contains(err.Error(), "docker login "+host) {
		t.Fatalf("got %v", err)
	}
	_, err = regs.Base(context.Background(), host+"/base:1")
	if err == nil || !strings.Contains(err.Error(), "refused access") {
		t.Fatalf("base: got %v", err)
	}
}

func TestBaseNotFound(t *testing.T) {
	_, host, regs := newRegistry(t)
	_, err := regs.Base(context.Background(), host+"/nothing:1")
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "build.base") {
		t.Fatalf("got %v", err)
	}
}

func TestBaseReadsIndex(t *testing.T) {
	_, host, regs := newRegistry(t)
	idx, err := random.Index(64, 1, 2)
	must(t, err)
	must(t, remote.WriteIndex(publishtest.Ref(t, host+"/base:1"), idx))
	b, err := regs.Base(context.Background(), host+"/base:1")
	must(t, err)
	d, _ := idx.Digest()
	if b.Index == nil || b.Digest != d {
		t.Fatalf("got %+v", b)
	}
}

func TestPlainHTTPOnlyForLoopbackOrInsecure(t *testing.T) {
	g := &plainHTTPGuard{next: http.DefaultTransport, insecure: []string{"10.1.1.1:5000"}}
	req, _ := http.NewRequest(http.MethodGet, "http://10.9.9.9:5000/v2/", nil)
	var plain *publish.PlainHTTPError
	if _, err := g.RoundTrip(req); !errors.As(err, &plain) || plain.Host != "10.9.9.9:5000" {
		t.Fatalf("got %v, want a publish.PlainHTTPError for 10.9.9.9:5000", err)
	}
	regs, err := New(Options{Insecure: []string{"10.1.1.1:5000"}})
	must(t, err)
	for ref, scheme := range map[string]string{"127.0.0.1:5999/a": "http", "localhost:1/a": "http", "10.1.1.1:5000/a": "http", "example.com/a": "https"} {
		r, err := regs.ParseReference(ref)
		must(t, err)
		if got := r.Context().Scheme(); got != scheme {
			t.Errorf("%s: scheme %s, want %s", ref, got, scheme)
		}
	}
}

func TestRegistryRetriesAsDocumented(t *testing.T) {
	h, host, _ := newRegistry(t)
	regs, err := New(Options{Keychain: authn.NewMultiKeychain(), Attempts: 3, Backoff: time.Millisecond})
	must(t, err)
	var puts atomic.Int32
	h.fail = func(r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			puts.Add(1)
			return true
		}
		return false
	}
	a := publishtest.Artifact(t)
	a.SBOM = nil
	if _, err := (&Publisher{Prefix: host, Client: regs}).Publish(context.Background(), a, "x", "v1"); err == nil {
		t.Fatal("a registry failing every manifest PUT accepted the push")
	}
	if puts.Load() != 3 {
		t.Fatalf("the manifest PUT was tried %d times, want 3 attempts (docs/build.md)", puts.Load())
	}
}

// hungRegistry is a registry address that accepts connections and never
// answers (on loopback only).
func hungRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// A registry that never answers is given up on after Timeout, once, with
// an error that says so: login, push and base images alike.
func TestRegistryThatNeverAnswers(t *testing.T) {
	host := hungRegistry(t)
	const bound = 200 * time.Millisecond
	regs, err := New(Options{Keychain: authn.NewMultiKeychain(), Timeout: bound, Backoff: 1})
	must(t, err)
	ctx := context.Background()
	for what, call := range map[string]func() error{
		"login": func() error { return regs.Verify(ctx, host, publish.Credentials{Username: "u", Password: "p"}) },
		"push": func() error {
			var said string
			_, err := (&Publisher{Prefix: host, Client: regs, Pushing: func(ref string) { said = ref }}).Publish(ctx, publishtest.Artifact(t), "hello", "latest")
			if said != host+"/hello:latest" {
				t.Errorf("Pushing was told %q before the push, want %s", said, host+"/hello:latest")
			}
			return err
		},
		"base": func() error { _, err := regs.Base(ctx, host+"/base:1"); return err },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "no answer from "+host+" within 200ms") {
			t.Errorf("%s: got %v, want no answer within 200ms", what, err)
		}
		// Both schemes (https, then plain HTTP on loopback), each asked once.
		if took > 5*bound {
			t.Errorf("%s took %s with a bound of %s", what, took, bound)
		}
	}
}

func TestLoginVerifyStoreErase(t *testing.T) {
	ctx := context.Background()
	host := registrytest.BasicAuth(t, "ci", "right")
	regs, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = regs.Verify(ctx, host, publish.Credentials{Username: "ci", Password: "s3cret-wrong"})
	var bad *publish.BadCredentialsError
	if !errors.As(err, &bad) || bad.Status != http.StatusUnauthorized || strings.Contains(err.Error(), "s3cret-wrong") {
		t.Fatalf("Verify(wrong) = %v, want a publish.BadCredentialsError without the password", err)
	}
	if err := regs.Verify(ctx, host, publish.Credentials{Username: "ci", Password: "right"}); err != nil {
		t.Fatalf("Verify(right) = %v", err)
	}

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if got := publish.CredentialSource(host); got != "" {
		t.Errorf("publish.CredentialSource before login = %q", got)
	}
	// Another registry's entry is kept.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"other.example":{"auth":"eDp5"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	where, err := publish.StoreCredentials(host, publish.Credentials{Username: "ci", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.json")
	if where != file || publish.CredentialSource(host) != file {
		t.Errorf("stored in %q, source %q; want %s", where, publish.CredentialSource(host), file)
	}
	var cf struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Auths[host].Auth != base64.StdEncoding.EncodeToString([]byte("ci:right")) || cf.Auths["other.example"].Auth != "eDp5" {
		t.Errorf("config.json = %s", data)
	}
	// skiff's keychain (docker's config) now finds them.
	reg, _ := name.NewRegistry(host, name.Insecure)
	auth, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := auth.Authorization(); err != nil || ac.Username != "ci" || ac.Password != "right" {
		t.Errorf("the keychain resolves %+v, %v", ac, err)
	}

	if _, found, err := publish.EraseCredentials(host); err != nil || !found {
		t.Fatalf("publish.EraseCredentials = %t, %v", found, err)
	}
	if _, found, err := publish.EraseCredentials(host); err != nil || found {
		t.Errorf("second publish.EraseCredentials = %t, %v; want nothing found", found, err)
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), host) || !strings.Contains(string(data), "other.example") {
		t.Errorf("config.json after logout = %s", data)
	}
}

func TestAnonymousPullAndPullSecret(t *testing.T) {
	ctx := context.Background()
	regs, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	private := registrytest.BasicAuth(t, "ci", "right")
	openSrv := httptest.NewServer(memregistry.New())
	defer openSrv.Close()
	open := strings.TrimPrefix(openSrv.URL, "http://")
	if ok, err := regs.AnonymousPull(ctx, private+"/shop/orders"); err != nil || ok {
		t.Errorf("AnonymousPull(private) = %t, %v; want false", ok, err)
	}
	if ok, err := regs.AnonymousPull(ctx, open+"/shop/orders"); err != nil || !ok {
		t.Errorf("AnonymousPull(open) = %t, %v; want true", ok, err)
	}

	data, err := publish.DockerConfigJSON(private, keychainFunc(func(authn.Resource) (authn.Authenticator, error) {
		return &authn.Basic{Username: "ci", Password: "right"}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auths) != 1 || cfg.Auths[private]["auth"] != base64.StdEncoding.EncodeToString([]byte("ci:right")) || cfg.Auths[private]["username"] != "ci" {
		t.Errorf("dockerconfigjson = %s", data)
	}
	_, err = publish.DockerConfigJSON(private, authn.NewMultiKeychain())
	var none *publish.NoCredentialsError
	if !errors.As(err, &none) || !strings.Contains(err.Error(), "run `skiff login "+private+"`") {
		t.Errorf("publish.DockerConfigJSON without credentials = %v", err)
	}
}

type keychainFunc func(authn.Resource) (authn.Authenticator, error)

func (f keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) { return f(r) }
