package publish

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
)

// basicAuthRegistry is an in-memory registry that wants ci/right.
func basicAuthRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "right" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLoginVerifyStoreErase(t *testing.T) {
	ctx := context.Background()
	host := basicAuthRegistry(t)
	regs, err := NewRegistries(RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = regs.Verify(ctx, host, Credentials{"ci", "s3cret-wrong"})
	var bad *BadCredentialsError
	if !errors.As(err, &bad) || bad.Status != http.StatusUnauthorized || strings.Contains(err.Error(), "s3cret-wrong") {
		t.Fatalf("Verify(wrong) = %v, want a BadCredentialsError without the password", err)
	}
	if err := regs.Verify(ctx, host, Credentials{"ci", "right"}); err != nil {
		t.Fatalf("Verify(right) = %v", err)
	}

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if got := CredentialSource(host); got != "" {
		t.Errorf("CredentialSource before login = %q", got)
	}
	// Another registry's entry is kept.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"other.example":{"auth":"eDp5"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	where, err := StoreCredentials(host, Credentials{"ci", "right"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.json")
	if where != file || CredentialSource(host) != file {
		t.Errorf("stored in %q, source %q; want %s", where, CredentialSource(host), file)
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

	if _, found, err := EraseCredentials(host); err != nil || !found {
		t.Fatalf("EraseCredentials = %t, %v", found, err)
	}
	if _, found, err := EraseCredentials(host); err != nil || found {
		t.Errorf("second EraseCredentials = %t, %v; want nothing found", found, err)
	}
	data, _ = os.ReadFile(file)
	if strings.Contains(string(data), host) || !strings.Contains(string(data), "other.example") {
		t.Errorf("config.json after logout = %s", data)
	}
}

func TestDockerKey(t *testing.T) {
	for host, want := range map[string]string{"docker.io": "https://index.docker.io/v1/", "index.docker.io": "https://index.docker.io/v1/", "registry.example.com:5000": "registry.example.com:5000"} {
		if got := dockerKey(host); got != want {
			t.Errorf("dockerKey(%s) = %s, want %s", host, got, want)
		}
	}
}

func TestAnonymousPullAndPullSecret(t *testing.T) {
	ctx := context.Background()
	regs, err := NewRegistries(RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	private := basicAuthRegistry(t)
	openSrv := httptest.NewServer(registry.New())
	defer openSrv.Close()
	open := strings.TrimPrefix(openSrv.URL, "http://")
	if ok, err := regs.AnonymousPull(ctx, private+"/shop/orders"); err != nil || ok {
		t.Errorf("AnonymousPull(private) = %t, %v; want false", ok, err)
	}
	if ok, err := regs.AnonymousPull(ctx, open+"/shop/orders"); err != nil || !ok {
		t.Errorf("AnonymousPull(open) = %t, %v; want true", ok, err)
	}

	data, err := DockerConfigJSON(private, keychainFunc(func(authn.Resource) (authn.Authenticator, error) {
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
	_, err = DockerConfigJSON(private, authn.NewMultiKeychain())
	var none *NoCredentialsError
	if !errors.As(err, &none) || !strings.Contains(err.Error(), "run `skiff login "+private+"`") {
		t.Errorf("DockerConfigJSON without credentials = %v", err)
	}
}

type keychainFunc func(authn.Resource) (authn.Authenticator, error)

func (f keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) { return f(r) }
