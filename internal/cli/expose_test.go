package cli

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
)

// status and deploy's summary add a URL column when a workload is exposed,
// and keep their columns when none is.
func TestTablesShowThePublicURL(t *testing.T) {
	f, _ := testFactory(t, false)
	out := f.IOStreams.Out.(*bytes.Buffer)
	sts := []*engine.Status{
		{Workload: "front", Kind: "service", State: engine.StateReady, Revision: 1, Ready: 1, Desired: 1, URL: "https://front.example.com/"},
		{Workload: "worker", Kind: "service", State: engine.StateReady, Revision: 1, Ready: 1, Desired: 1},
	}
	if err := printStatus(f, sts); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last(lines[0]) != "URL" || last(lines[1]) != "https://front.example.com/" || last(lines[2]) != "-" {
		t.Errorf("status table:\n%s", out)
	}
	out.Reset()
	if err := printStatus(f, sts[1:]); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "URL") {
		t.Errorf("a URL column without an exposed workload:\n%s", out)
	}
	out.Reset()
	if err := printDeployed(f, []engine.Deployment{{Workload: "front", Revision: 2, Ready: "1/1", URL: "https://front.example.com/"}}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); last(lines[0]) != "URL" || last(lines[1]) != "https://front.example.com/" {
		t.Errorf("deploy summary:\n%s", out)
	}
}

func last(line string) string {
	f := strings.Fields(line)
	return f[len(f)-1]
}

const exposeManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
gateway: {name: edge, namespace: infra}
tls: {issuer: le}
workloads:
  - name: front
    kind: service
    lang: go
    expose: {host: example.com, path: /shop}
  - name: worker
    kind: service
    lang: go
`

// invoke --public calls the exposed URL by its name at the gateway's
// address, under the exposed path, verifying TLS with --cacert.
func TestInvokePublic(t *testing.T) {
	var gotPath, gotHost, gotType string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHost, gotType = r.URL.Path, r.Host, r.Header.Get("ce-type")
		io.WriteString(w, "hello from the edge")
	}))
	defer srv.Close()
	f, dir, errBuf := testFactoryBuffers(t, false)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(exposeManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	code := run(context.Background(), f, []string{"invoke", "front", "--public", "--path", "/items", "--cacert", ca, "--connect-to", addr})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errBuf)
	}
	if out := f.IOStreams.Out.(*bytes.Buffer).String(); out != "hello from the edge" || gotPath != "/shop/items" || gotHost != "example.com" {
		t.Errorf("out %q, path %q, host %q", out, gotPath, gotHost)
	}
	if !strings.Contains(errBuf.String(), "200 OK from front (https://example.com/shop at "+addr+")") {
		t.Errorf("stderr = %q", errBuf)
	}

	// A CloudEvent goes the same way.
	errBuf.Reset()
	code = run(context.Background(), f, []string{"invoke", "front", "--public", "--cloudevent", "--type", "com.example.ping", "-d", `{"a":1}`,
		"--cacert", ca, "--connect-to", addr})
	if code != 0 || gotType != "com.example.ping" || gotPath != "/shop/" {
		t.Errorf("--cloudevent --public: exit %d, ce-type %q, path %q: %s", code, gotType, gotPath, errBuf)
	}

	// Without the CA: the error says how to trust it.
	errBuf.Reset()
	if code := run(context.Background(), f, []string{"invoke", "front", "--public", "--connect-to", addr}); code != cmdutil.ExitFailure ||
		!strings.Contains(errBuf.String(), "does not verify") || !strings.Contains(errBuf.String(), "--cacert FILE") {
		t.Errorf("without --cacert: exit %d, stderr %q", code, errBuf)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invoke", "worker", "--public"}, "worker is not exposed"},
		{[]string{"invoke", "front", "--cacert", ca}, "add --public"},
		{[]string{"invoke", "front", "--public", "--local"}, "choose one"},
		{[]string{"invoke", "front", "--public", "--connect-to", "gateway"}, "must be HOST:PORT"},
	} {
		errBuf.Reset()
		if code := run(context.Background(), f, tc.args); code != cmdutil.ExitUsage || !strings.Contains(errBuf.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errBuf, tc.want)
		}
	}
}
