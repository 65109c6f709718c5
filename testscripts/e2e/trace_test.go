//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
)

// traceAPISource is the Go service of TestTrace: GET /order?name=X logs a
// line, calls greet (a Python function) through GREET_URL with the
// template's traced client, emits a com.example.order.placed event to
// K_SINK in the same trace, and answers with greet's answer; GET /fail
// logs a line and answers 500.
const traceAPISource = `package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
)

func newAPI(logger *slog.Logger) http.Handler {
	client := newClient()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "failing")
		http.Error(w, "failed on purpose", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /order", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		logger.InfoContext(r.Context(), "order", "name", name)
		greet, err := dependencyURL(os.Getenv, "greet")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, greet+"/?name="+name, nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if err := emitEvent(r.Context(), client, os.Getenv("K_SINK"), "com.example.order.placed", "/api", map[string]string{"name": name}); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		io.Copy(w, resp.Body)
	})
	return mux
}
`

// TestTrace follows one request (issue 27): a Go service calls a Python
// function that scales to zero (through GREET_URL, the KEDA interceptor
// between them) and emits an event that skiff-relay delivers to a Node.js
// CloudEvents function. The request comes with a known traceparent, and
// `skiff logs --trace` shows its lines from the three workloads and both
// relay hops, in time order. Only sampled traces and failures get the
// per-request lines: a request in an unsampled trace that succeeded has
// none at any hop (only the app's own line), one that failed has its
// "request" line.
func TestTrace(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-trace")
	relayRef := c.relayImage(t)
	b := pushBases(t, c.registry)

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "service", "--lang", "go", "--name", "api",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "greet", "--kind", "function", "--lang", "python")
	c.mustSkiff(t, root, "add", "audit", "--kind", "function", "--lang", "node", "--template", "cloudevents")
	manifest := filepath.Join(root, "skiff.yaml")
	stream := strings.ReplaceAll(ns, "-", "_")
	replaceInFile(t, manifest, "workloads:\n", "build:\n  base:\n    node: "+b.Node+"\n    python: "+b.Python+"\n"+
		"events:\n  bus: "+testBus+"\n  stream: "+stream+"\n  relayImage: "+relayRef+"\nworkloads:\n")
	replaceInFile(t, manifest, "  - name: api\n", "  - name: api\n    dependsOn: [greet]\n")
	replaceInFile(t, manifest, "  - name: greet\n", "  - name: greet\n    scale: {min: 0, max: 1, idle: 30s}\n")
	replaceInFile(t, manifest, "  - name: audit\n", "  - name: audit\n    triggers:\n      - event: com.example.order.placed\n")
	if err := os.WriteFile(filepath.Join(root, "api", "api.go"), []byte(traceAPISource), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "api", "api_test.go"))
	if out, errOut, code := c.skiffIn(t, root, "deploy", "--timeout", "5m"); code != 0 {
		c.dumpNamespace(t, ns)
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}

	const (
		traceID    = "4bf92f3577b34da6a3ce929d0e0e4736" // sampled
		unsampled  = "0af7651916cd43dd8448eb211c80319c"
		failedID   = "5e3a1f0c9b8d47e6a2c4b1d0e9f8a7b6" // unsampled too
		callerSpan = "00f067aa0ba902b7"
	)
	fw := c.forwardTo(t, ns, "shop-api", workloadPort(t, root, "api"))
	get := func(path, traceparent string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+fw+path, nil)
		req.Header.Set("traceparent", traceparent)
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, mustReadAll(t, resp.Body)
	}
	// The unsampled ones first: their hops' lines, had they any, would be
	// in the logs before the sampled trace's.
	if code, body := get("/order?name=Bo", "00-"+unsampled+"-"+callerSpan+"-00"); code != http.StatusOK || !strings.Contains(body, "Bo") {
		t.Fatalf("GET /order in an unsampled trace: %d %s", code, body)
	}
	if code, body := get("/fail", "00-"+failedID+"-"+callerSpan+"-00"); code != http.StatusInternalServerError {
		t.Fatalf("GET /fail: %d %s, want 500", code, body)
	}
	if code, body := get("/order?name=Ada", "00-"+traceID+"-"+callerSpan+"-01"); code != http.StatusOK || !strings.Contains(body, "Ada") {
		t.Fatalf("GET /order: %d %s", code, body)
	}

	// hop names a line: workload/container message.
	hop := func(l engine.LogLine) string {
		var rec struct {
			Msg string `json:"msg"`
		}
		json.Unmarshal([]byte(l.Message), &rec)
		return l.Workload + "/" + l.Container + " " + rec.Msg
	}
	// traceLines are the lines `skiff logs --trace id` shows, and whether
	// every one of want is among them.
	traceLines := func(id string, want ...string) ([]engine.LogLine, bool) {
		out, _, code := c.skiffIn(t, root, "logs", "--trace", id, "--since", "10m", "-o", "json")
		if code != 0 {
			return nil, false
		}
		var lines []engine.LogLine
		for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
			var l engine.LogLine
			if json.Unmarshal([]byte(s), &l) == nil {
				lines = append(lines, l)
			}
		}
		have := map[string]bool{}
		for _, l := range lines {
			have[hop(l)] = true
		}
		for _, w := range want {
			if !have[w] {
				return lines, false
			}
		}
		return lines, true
	}
	want := []string{
		"api/api order", "greet/greet request", "api/skiff-relay stored", "api/api request",
		"audit/audit request", "audit/skiff-relay delivered",
	}
	var lines []engine.LogLine
	// The delivery to audit is asynchronous: ask until its line is there.
	waitFor(t, 2*time.Minute, "the trace's lines from the three workloads and both relays", func() bool {
		var ok bool
		lines, ok = traceLines(traceID, want...)
		return ok
	})
	// The failed request in an unsampled trace has its line.
	waitFor(t, time.Minute, "the failed request's lines", func() bool {
		_, ok := traceLines(failedID, "api/api failing", "api/api request")
		return ok
	})
	// The unsampled trace that succeeded has the app's own line (so its
	// lines were collected) and none of the per-request or per-event
	// lines: they would be in the logs before the sampled trace's, which
	// are there.
	quiet, ok := traceLines(unsampled, "api/api order")
	if !ok {
		t.Fatalf("the unsampled trace lacks the app's own line: %v", quiet)
	}
	for _, l := range quiet {
		if h := hop(l); h != "api/api order" {
			t.Errorf("the unsampled trace that succeeded has the line %s: %s", h, l.Message)
		}
	}
	var got []string
	for i, l := range lines {
		got = append(got, hop(l))
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("line %d (%s at %s) is before the one above it (%s)", i, hop(l), l.Time, lines[i-1].Time)
		}
		if !strings.Contains(l.Message, traceID) {
			t.Errorf("line %q is not of the trace", l.Message)
		}
	}
	t.Logf("the trace:\n%s", strings.Join(got, "\n"))
	// Causes come before their effects.
	at := func(h string) int {
		for i, g := range got {
			if g == h {
				return i
			}
		}
		return -1
	}
	for _, pair := range [][2]string{
		{"api/api order", "greet/greet request"},
		{"greet/greet request", "api/skiff-relay stored"},
		{"api/skiff-relay stored", "audit/audit request"},
	} {
		if at(pair[0]) > at(pair[1]) {
			t.Errorf("%q comes after %q", pair[0], pair[1])
		}
	}

	// The text form: each line with its workload and pod.
	out := c.mustSkiff(t, root, "logs", "--trace", traceID, "--since", "10m")
	for _, prefix := range []string{"api api-", "greet greet-", "audit audit-"} {
		if !strings.Contains(out, prefix) {
			t.Errorf("skiff logs --trace lacks %q:\n%s", prefix, out)
		}
	}
	c.mustSkiff(t, root, "delete", "--all")
}
