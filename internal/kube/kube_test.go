package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// fakeServer answers /version with major and minor, and counts requests.
func fakeServer(t *testing.T, major, minor string) (kubeconfig string, requests *int) {
	t.Helper()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"major":%q,"minor":%q,"gitVersion":"v%s.%s.0"}`, major, minor, major, minor)
	}))
	t.Cleanup(srv.Close)
	kubeconfig = filepath.Join(t.TempDir(), "config")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, &n
}

func TestPingReadsTheServerVersion(t *testing.T) {
	for _, tc := range []struct {
		major, minor string
		validates    bool
	}{
		{"1", "37", true},
		{"1", "27", true},
		{"1", "27+", true}, // as some providers write it
		{"1", "26", false},
		{"1", "24", false},
		{"2", "0", true},
		{"", "", false}, // a server that does not say
	} {
		t.Run(tc.major+"."+tc.minor, func(t *testing.T) {
			path, requests := fakeServer(t, tc.major, tc.minor)
			kc, err := New(Options{Kubeconfig: path})
			if err != nil {
				t.Fatal(err)
			}
			if kc.ValidatesFields() {
				t.Error("ValidatesFields before Ping = true, want false (unknown)")
			}
			if err := kc.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			if *requests != 1 {
				t.Errorf("Ping made %d requests, want 1", *requests)
			}
			if kc.Version == nil || kc.Version.Major != tc.major || kc.Version.Minor != tc.minor {
				t.Errorf("Version = %+v, want %s.%s", kc.Version, tc.major, tc.minor)
			}
			if got := kc.ValidatesFields(); got != tc.validates {
				t.Errorf("ValidatesFields() = %v, want %v", got, tc.validates)
			}
		})
	}
}

func TestPingUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	path, _ := fakeServer(t, "1", "30")
	kc, err := New(Options{Kubeconfig: path})
	if err != nil {
		t.Fatal(err)
	}
	kc.REST.Host = srv.URL
	srv.Close() // nothing listens there any more
	err = kc.Ping(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Ping of a closed server = %v, want an UnreachableError", err)
	}
	if kc.Version != nil || kc.ValidatesFields() {
		t.Errorf("after a failed Ping: Version %+v, ValidatesFields %v", kc.Version, kc.ValidatesFields())
	}
}
