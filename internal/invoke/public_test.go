package invoke

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A public URL is called by its name, dialed at the gateway's address,
// with TLS verified against the given CA; without it, the error says how to
// trust it.
func TestPublicClient(t *testing.T) {
	var host, sni string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, sni = r.Host, r.TLS.ServerName
		io.WriteString(w, "public")
	}))
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	roots, err := LoadRoots(ca)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	addr := strings.TrimPrefix(srv.URL, "https://")

	// httptest's certificate is for example.com.
	resp, err := Do(ctx, PublicClient(roots, addr), "https://example.com", Request{Path: "/hello"})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "public" || host != "example.com" || sni != "example.com" {
		t.Errorf("body %q, Host %q, SNI %q; want public, example.com twice", resp.Body, host, sni)
	}

	// The system's pool does not know httptest's CA.
	_, err = Do(ctx, PublicClient(nil, addr), "https://example.com", Request{Path: "/"})
	var ue *UntrustedError
	if !errors.As(Untrusted("example.com", err), &ue) || !strings.Contains(ue.Error(), "pass --cacert FILE") {
		t.Errorf("untrusted: %v, want an UntrustedError", Untrusted("example.com", err))
	}
	// A name the certificate is not for.
	_, err = Do(ctx, PublicClient(roots, addr), "https://other.test", Request{Path: "/"})
	if !errors.As(Untrusted("other.test", err), &ue) {
		t.Errorf("wrong name: %v, want an UntrustedError", err)
	}

	if _, err := LoadRoots(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("LoadRoots of a missing file succeeded")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not pem"), 0o600)
	if _, err := LoadRoots(empty); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("LoadRoots(not pem) = %v", err)
	}
}
