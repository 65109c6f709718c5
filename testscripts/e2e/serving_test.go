//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
)

// servingAPI replaces the Go service template's API: /ok answers 200,
// /fail 500.
const servingAPI = `package main

import (
	"io"
	"log/slog"
	"net/http"
)

func newAPI(_ *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
	})
	return mux
}
`

// servingOf runs skiff with args (a status -o json) and returns each
// workload's figures.
func (c *cluster) servingOf(t *testing.T, root string, args ...string) map[string]*engine.Serving {
	t.Helper()
	out, errOut, code := c.skiffIn(t, root, args...)
	var sts []engine.Status
	if err := json.Unmarshal([]byte(out), &sts); err != nil {
		t.Fatalf("skiff %s (exit %d): %v\n%s\n%s", strings.Join(args, " "), code, err, out, errOut)
	}
	m := map[string]*engine.Serving{}
	for _, s := range sts {
		m[s.Workload] = s.Serving
	}
	return m
}

// TestObserveStatusAndTop is `skiff status -o wide/-o json` and `skiff top` on the
// real cluster: a Go service answers N requests through its pod's
// skiff-relay, k of them failing; skiff reads the pod's figures through
// the API server and, with the test cluster's Prometheus, by PromQL.
// (Named TestObserve…: .ci/run's -run TestObserve runs it with the
// proxy's e2e.)
func TestObserveStatusAndTop(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-serving")
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "service", "--lang", "go", "--name", "api",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	if err := os.WriteFile(filepath.Join(root, "api", "api.go"), []byte(servingAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "api", "api_test.go"))
	c.mustSkiff(t, root, "deploy", "--timeout", "4m")

	pod, err := readyPod(ctx, c.kc.Clientset, ns, "app.kubernetes.io/instance=shop-api")
	if err != nil {
		t.Fatal(err)
	}
	// Before any request: read, and nothing served.
	if s := c.servingOf(t, root, "status", "-o", "json")["api"]; s == nil || s.Source != engine.SourcePods || s.Pods != 1 || s.Requests != 0 || !s.Idle {
		t.Fatalf("before any request: %+v", s)
	}
	fw, err := c.kc.ForwardPort(ctx, ns, pod.Name, 8012) // the proxy's port: what the Service reaches
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	// One request of each kind first, so that their series exist in
	// Prometheus before the load (increase() counts from a series' first
	// sample).
	_, _ = httpGet("http://" + fw.Addr + "/ok")
	_, _ = httpGet("http://" + fw.Addr + "/fail")
	prom := os.Getenv("SKIFF_TEST_PROMETHEUS")
	if prom != "" {
		waitPromSeries(t, prom, fmt.Sprintf(`http_server_request_duration_seconds_count{namespace=%q,http_response_status_code="500"}`, ns))
	}
	const n, k = 40, 5 // the load
	const warm = 2     // and the first two, one of them failing
	for i := range n + k {
		path := "/ok"
		if i%9 == 8 {
			path = "/fail"
		}
		_, _ = httpGet("http://" + fw.Addr + path)
	}

	s := c.servingOf(t, root, "status", "-o", "json", "--window", "5m")["api"]
	if s == nil || s.Requests != n+k+warm || s.Errors != k+1 || s.Pods != 1 || s.Idle || s.P50 == nil || s.P99 == nil || *s.P99 <= 0 {
		t.Fatalf("status -o json: %+v; want %d requests, %d errors from 1 pod, p50 and p99", s, n+k+warm, k+1)
	}
	if want := 100 * float64(k+1) / float64(n+k+warm); math.Abs(s.ErrorPercent-want) > 0.01 {
		t.Errorf("error %% %g, want %g", s.ErrorPercent, want)
	}
	// The relay rounds the window down to its 10 s slots: up to 10 s more.
	if lo, hi := float64(n+k+warm)/310, float64(n+k+warm)/300; s.RPS < lo-0.001 || s.RPS > hi+0.001 {
		t.Errorf("rps %g, want %d requests over 5m: %.3f-%.3f", s.RPS, n+k+warm, lo, hi)
	}
	t.Logf("status -o json: %d requests, %d errors, p50 %gs, p99 %gs", s.Requests, s.Errors, *s.P50, *s.P99)

	wide := c.mustSkiff(t, root, "status", "-o", "wide")
	t.Logf("status -o wide:\n%s", wide)
	if !strings.Contains(wide, "RPS") || !strings.Contains(wide, "12.8%") { // 6 of 47
		t.Errorf("status -o wide lacks the figures:\n%s", wide)
	}

	top := c.mustSkiff(t, root, "top", "--once", "-o", "json")
	var frame struct{ Workloads []engine.Status }
	if err := json.Unmarshal([]byte(top), &frame); err != nil || len(frame.Workloads) != 1 || frame.Workloads[0].Serving == nil || frame.Workloads[0].Serving.Requests != n+k+warm {
		t.Errorf("top --once -o json: %v\n%s", err, top)
	}

	// The load's figures by PromQL from the test cluster's Prometheus,
	// which scrapes every second; increase() extrapolates a little.
	if prom == "" {
		t.Log("no SKIFF_TEST_PROMETHEUS: the Prometheus reader is not checked here")
		return
	}
	// increase() extrapolates a series to the ends of the window by up to
	// a scrape interval: over a series a few samples long that is a third
	// more. Once every series has 30 samples (30 s) it is a few per cent.
	waitPromSeries(t, prom, fmt.Sprintf(`min(count_over_time(http_server_request_duration_seconds_count{namespace=%q}[5m])) >= 30`, ns))
	var ps *engine.Serving
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps = c.servingOf(t, root, "status", "-o", "json", "--prometheus", prom)["api"]
		if ps != nil && ps.Requests >= n+k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never had the %d requests: %+v", n+k, ps)
		}
		time.Sleep(2 * time.Second)
	}
	if ps.Source != engine.SourcePrometheus || float64(ps.Requests) > 1.1*(n+k) || float64(ps.Errors) < k || float64(ps.Errors) > 1.1*k+1 || ps.P99 == nil {
		t.Errorf("status --prometheus: %+v; want %d requests and %d errors within 10%%", ps, n+k, k)
	}
	t.Logf("status --prometheus: %d requests, %d errors, p99 %v", ps.Requests, ps.Errors, fmt.Sprint(*ps.P99))
}

// waitPromSeries waits until the Prometheus at base has a series for
// selector.
func waitPromSeries(t *testing.T, base, selector string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := httpGet(base + "/api/v1/query?query=" + url.QueryEscape(selector))
		var resp struct {
			Data struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err == nil && json.Unmarshal([]byte(body), &resp) == nil && len(resp.Data.Result) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus at %s never had %s: %v %s", base, selector, err, body)
		}
		time.Sleep(time.Second)
	}
}

// TestObserveTopAcrossScaleToZero runs `skiff top` while a function scaled
// from zero serves and goes back to zero pods: top keeps what it read,
// so its last refresh still has the requests; `skiff status`, reading the
// pods afresh, finds none left and says idle.
func TestObserveTopAcrossScaleToZero(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-top")
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: hello\n", "  - name: hello\n    scale: {min: 0, max: 1, idle: 8s}\n")
	c.mustSkiff(t, root, "deploy", "--timeout", "4m")

	// top runs from here to the end, a refresh a second, as JSON lines.
	topCtx, stopTop := context.WithCancel(ctx)
	defer stopTop()
	top := exec.CommandContext(topCtx, c.skiff, "top", "-o", "json", "--interval", "1s")
	top.Dir, top.Env = root, append(os.Environ(), c.env...)
	stdout, err := top.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var topErr strings.Builder
	top.Stderr = &topErr
	if err := top.Start(); err != nil {
		t.Fatal(err)
	}
	frames := make(chan engine.Status, 1000)
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var f struct{ Workloads []engine.Status }
			if json.Unmarshal(sc.Bytes(), &f) == nil && len(f.Workloads) == 1 {
				frames <- f.Workloads[0]
			}
		}
	}()

	// Wake it if it went idle already (through the interceptor), then
	// load its pod's skiff-relay.
	c.mustSkiff(t, root, "invoke", "hello", "--path", "/?name=wake")
	pod, err := readyPod(ctx, c.kc.Clientset, ns, "app.kubernetes.io/instance=shop-hello")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := c.kc.ForwardPort(ctx, ns, pod.Name, 8012)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for range n {
		if _, err := httpGet("http://" + fw.Addr + "/?name=top"); err != nil {
			t.Fatal(err)
		}
	}
	fw.Close()

	c.waitIdle(t, root, ns)
	// A refresh of top after the pods went: Idle, with what they served.
	deadline := time.After(2 * time.Minute)
	var last engine.Status
	for seen := false; !seen; {
		select {
		case st, ok := <-frames:
			if !ok {
				t.Fatalf("top ended: %s", topErr.String())
			}
			last = st
			seen = st.State == engine.StateIdle && st.Ready == 0 && st.Serving != nil && st.Serving.Requests >= n
		case <-deadline:
			t.Fatalf("no refresh of top at zero pods with the %d requests; the last: %+v %+v\n%s", n, last, last.Serving, topErr.String())
		}
	}
	t.Logf("top at zero pods: %d requests, p99 %v, cold starts %d", last.Serving.Requests, fmt.Sprint(deref(last.Serving.P99)), last.Serving.ColdStarts)
	stopTop()

	s := c.servingOf(t, root, "status", "-o", "json")["hello"]
	if s == nil || !s.Idle || s.Pods != 0 || s.Requests != 0 {
		t.Errorf("status at zero pods: %+v, want idle with nothing left to read", s)
	}
	_, errOut, _ := c.skiffIn(t, root, "status", "-o", "wide")
	if !strings.Contains(errOut, "hello: idle: no pod runs") {
		t.Errorf("status -o wide does not say why hello is idle:\n%s", errOut)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
