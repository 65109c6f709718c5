//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/stats"
)

// observeAPI replaces the Go service template's API: its own routes, so
// the figures are the proxy's whatever the code (issue 27: a workload
// whose code was rewritten still has them).
const observeAPI = `package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
)

func newAPI(_ *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /py", func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(os.Getenv("PY_URL") + "/?name=api")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	return mux
}
`

// rateTolerance is how far a PromQL rate×range may be from the counts the
// test made: 10%, plus rate()'s extrapolation to the ends of its range,
// up to about a scrape interval (1 s) at each end, over the age of the
// series (seen is when Prometheus first had it).
func rateTolerance(seen time.Time) float64 {
	return 0.10 + 2.5/time.Since(seen).Seconds()
}

// TestObserve is issue 27's figures on the real cluster, through
// skiff-relay's proxy and the test cluster's Prometheus: a Go service
// (its template's code replaced) takes N requests, k of them failing,
// and one that calls a Python function at zero pods (one wake from zero);
// a Node.js function gets M events. Prometheus' counts, rate and p99, the
// pods' own /stats (read through the API server, as skiff does) and the
// cold start agree with what the test did.
func TestObserve(t *testing.T) {
	c := needCluster(t)
	prom := os.Getenv("SKIFF_TEST_PROMETHEUS")
	if prom == "" {
		t.Skip("no SKIFF_TEST_PROMETHEUS: the test cluster's `ci.sh env` prints it")
	}
	ns := c.restrictedNamespace(t, "e2e-observe")
	ctx := context.Background()
	b := pushBases(t, c.registry)

	// Project shop: py, a Python function that scales from zero, and api,
	// a Go service that calls it. No events: their relays run the proxy
	// alone.
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "python", "--name", "py",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "api", "--kind", "service", "--lang", "go", "--depends-on", "py")
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: py\n", "  - name: py\n    scale: {min: 0, max: 1, idle: 8s}\n")
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "workloads:\n", "build:\n  base:\n    python: "+b.Python+"\nworkloads:\n")
	if err := os.WriteFile(filepath.Join(root, "api", "api.go"), []byte(observeAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "api", "api_test.go"))
	out, errOut, code := c.skiffIn(t, root, "deploy", "--timeout", "4m")
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "without the metrics proxy") {
		t.Fatalf("deploy went without the proxy though the harness gives it a relay image:\n%s", errOut)
	}

	// Project hooks: audit, a Node.js function triggered by an event.
	hooks := filepath.Join(t.TempDir(), "hooks")
	stream := strings.ReplaceAll(ns, "-", "_")
	c.mustSkiff(t, "", "init", hooks, "--kind", "function", "--lang", "node", "--template", "cloudevents", "--name", "audit",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	manifest := filepath.Join(hooks, "skiff.yaml")
	replaceInFile(t, manifest, "workloads:\n", "build:\n  base:\n    node: "+b.Node+"\nevents:\n  bus: "+testBus+"\n  stream: "+stream+"\nworkloads:\n")
	replaceInFile(t, manifest, "  - name: audit\n", "  - name: audit\n    triggers:\n      - event: com.example.order.placed\n")
	c.mustSkiff(t, hooks, "deploy", "--timeout", "4m")

	// Prometheus finds api's pod before any request: its gauge shows.
	apiPod := c.waitReadyPod(t, ns, "shop-api")
	sel := fmt.Sprintf(`namespace=%q,workload="api"`, ns)
	promWait(t, prom, "http_server_active_requests{"+sel+"}", func(v float64) bool { return v == 0 })

	// One request of each kind first, so that every series exists (at 1)
	// in Prometheus before the load: rate() then sees all of it.
	fw, err := c.kc.ForwardPort(ctx, ns, apiPod, 8012) // the proxy's port, not the app's
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	base := "http://" + fw.Addr
	mustStatus(t, base+"/ok", 200)
	mustStatus(t, base+"/fail", 500)
	count := `sum(http_server_request_duration_seconds_count{` + sel + `})`
	failed := `sum(http_server_request_duration_seconds_count{` + sel + `,http_response_status_code=~"5.."})`
	promWait(t, prom, count, func(v float64) bool { return v == 2 })
	promWait(t, prom, failed, func(v float64) bool { return v == 1 })
	seen := time.Now()

	// One wake from zero: api's GET /py calls py through the interceptor.
	c.waitZero(t, ns, "shop-py")
	pySel := fmt.Sprintf(`namespace=%q,workload="py"`, ns)
	coldQuery := `sum(max_over_time(skiff_cold_starts_total{` + pySel + `}[15m]))`
	coldBefore, _ := promQuery(t, prom, coldQuery) // deploy may have woken it to check it
	start := time.Now()
	body := mustStatus(t, base+"/py", 200)
	wake := time.Since(start)
	if !strings.Contains(body, "api!") {
		t.Fatalf("GET /py answered %q", body)
	}
	t.Logf("a request through api to py at zero pods answered in %s", wake.Round(time.Millisecond))
	pyPod := c.waitReadyPod(t, ns, "shop-py")
	pyStats := podStats(t, c, ns, pyPod, "15m")
	if pyStats.ColdStarts != 1 || pyStats.ColdStartWait.Count() != 1 || pyStats.ColdStartWait.Sum <= 0 || pyStats.ColdStartWait.Sum > wake.Seconds() {
		t.Errorf("py's /stats: %d cold starts, waited %.3fs; want 1, in (0, %.3f] (the caller's wait)",
			pyStats.ColdStarts, pyStats.ColdStartWait.Sum, wake.Seconds())
	}
	promWait(t, prom, coldQuery, func(v float64) bool { return v == coldBefore+1 })
	waitSum, _ := promQuery(t, prom, `sum(max_over_time(skiff_cold_start_wait_seconds_sum{`+pySel+`}[15m]))`)
	t.Logf("py's cold start: the pod counted %.3fs of the caller's %.3fs (Prometheus: %.3fs over its cold starts)",
		pyStats.ColdStartWait.Sum, wake.Seconds(), waitSum)

	// The load: N requests, every tenth failing (k), one at a time.
	const n, every = 200, 10
	k := 0
	var took []float64
	for i := range n {
		path, want := "/ok", 200
		if i%every == every-1 {
			path, want = "/fail", 500
			k++
		}
		s := time.Now()
		mustStatus(t, base+path, want)
		took = append(took, time.Since(s).Seconds())
	}
	total, errs := float64(2+1+n), float64(1+k) // with the first two and /py
	promWait(t, prom, count, func(v float64) bool { return v == total })
	promWait(t, prom, failed, func(v float64) bool { return v == errs })
	const rng = 600.0 // seconds: [10m]
	rate, _ := promQuery(t, prom, `sum(rate(http_server_request_duration_seconds_count{`+sel+`}[10m]))`)
	errRate, _ := promQuery(t, prom, `sum(rate(http_server_request_duration_seconds_count{`+sel+`,http_response_status_code=~"5.."}[10m]))`)
	// The first two requests are the series' first samples: rate sees the
	// rest.
	tol := rateTolerance(seen)
	if got, want := rate*rng, total-2; math.Abs(got-want) > want*tol {
		t.Errorf("rate×600 = %.1f requests, want %.0f ± %.0f%%", got, want, tol*100)
	}
	if got, want := errRate*rng, errs-1; math.Abs(got-want) > want*tol {
		t.Errorf("error rate×600 = %.1f, want %.0f ± %.0f%%", got, want, tol*100)
	}
	t.Logf("rate tolerance %.0f%% (the series are %s old)", tol*100, time.Since(seen).Round(time.Second))

	// p99: Prometheus and the pod's /stats estimate it from the same
	// buckets; neither exceeds the bucket of what the test measured
	// (which adds the port-forward to the proxy's time).
	p99, _ := promQuery(t, prom, `histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{`+sel+`}[10m])))`)
	apiStats := podStats(t, c, ns, apiPod, "15m")
	if apiStats.Requests != int64(total) || apiStats.Errors != int64(errs) || apiStats.Duration.Count() != int64(total) {
		t.Errorf("api's /stats: %d requests, %d errors; want %.0f, %.0f", apiStats.Requests, apiStats.Errors, total, errs)
	}
	statsP99 := apiStats.Duration.Quantile(0.99)
	slices.Sort(took)
	clientP99 := took[int(math.Ceil(0.99*float64(len(took))))-1]
	if math.Abs(p99-statsP99) > 0.1*statsP99 {
		t.Errorf("p99: Prometheus %.4fs, /stats %.4fs: want within 10%%", p99, statsP99)
	}
	if ceil := bucketCeil(clientP99); p99 > ceil {
		t.Errorf("p99 %.4fs above the bucket (≤ %gs) of the test's own p99 %.4fs", p99, ceil, clientP99)
	}
	t.Logf("api: %.0f requests, %.0f errors; Prometheus rate×600 %.1f, p99 %.2fms; /stats p99 %.2fms; the test's p99 %.2fms",
		total, errs, rate*rng, p99*1000, statsP99*1000, clientP99*1000)

	// M events to audit: its trigger's delivered count in Prometheus and
	// its /stats.
	const m = 30
	conn, err := bus.Dial(ctx, c.kc, testBus, testBusAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range m {
		ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": fmt.Sprintf("o%d", i), "source": "/e2e", "type": "com.example.order.placed"},
			ContentType: "application/json", Data: []byte(`{"name":"Ada"}`)}
		if _, err := relay.Publish(ctx, conn.JS, stream, ev); err != nil {
			t.Fatal(err)
		}
	}
	auditSel := fmt.Sprintf(`namespace=%q,workload="audit"`, ns)
	promWait(t, prom, `sum(skiff_relay_delivered_total{`+auditSel+`})`, func(v float64) bool { return v == m })
	auditPod := c.waitReadyPod(t, ns, "hooks-audit")
	auditStats := podStats(t, c, ns, auditPod, "15m")
	if len(auditStats.Triggers) != 1 {
		t.Fatalf("audit's /stats triggers: %+v", auditStats.Triggers)
	}
	for name, tr := range auditStats.Triggers {
		if tr.Delivered != m || tr.Latency.Count() != m || tr.Failed != 0 {
			t.Errorf("audit's trigger %s in /stats: %+v; want %d delivered", name, tr, m)
		}
		if v, ok := promQuery(t, prom, fmt.Sprintf(`sum(skiff_relay_delivered_total{%s,trigger=%q})`, auditSel, name)); !ok || v != m {
			t.Errorf("Prometheus: trigger %s delivered %v, want %d", name, v, m)
		}
		lat, _ := promQuery(t, prom, fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(skiff_relay_delivery_duration_seconds_bucket{%s,trigger=%q}[10m])))`, auditSel, name))
		t.Logf("audit: %d events delivered by trigger %s; delivery p99 %.1fms (Prometheus), %.1fms (/stats)",
			m, name, lat*1000, tr.Latency.Quantile(0.99)*1000)
	}
	promWait(t, prom, `max(skiff_relay_consumer_pending{`+auditSel+`})`, func(v float64) bool { return v == 0 })

	// What the relay costs in memory, as the kubelet sees its container
	// (docs/benchmarks.md): the proxy alone (api) and with events (audit).
	for _, pod := range []string{apiPod, auditPod} {
		rss, ws := relayMemory(t, c, ns, pod)
		t.Logf("skiff-relay in %s: RSS %.1f MiB, working set %.1f MiB", pod, rss/(1<<20), ws/(1<<20))
	}
}

// relayMemory is the skiff-relay container's RSS and working set in pod,
// from the kubelet's summary API (through the API server).
func relayMemory(t *testing.T, c *cluster, ns, pod string) (rss, workingSet float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.kc.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.kc.Clientset.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", p.Spec.NodeName, "proxy/stats/summary").DoRaw(ctx)
	if err != nil {
		t.Logf("the kubelet's summary: %v", err)
		return 0, 0
	}
	var sum struct {
		Pods []struct {
			PodRef     struct{ Name, Namespace string } `json:"podRef"`
			Containers []struct {
				Name   string `json:"name"`
				Memory struct {
					RSSBytes        float64 `json:"rssBytes"`
					WorkingSetBytes float64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"containers"`
		} `json:"pods"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	for _, sp := range sum.Pods {
		if sp.PodRef.Name != pod || sp.PodRef.Namespace != ns {
			continue
		}
		for _, ct := range sp.Containers {
			if ct.Name == "skiff-relay" {
				return ct.Memory.RSSBytes, ct.Memory.WorkingSetBytes
			}
		}
	}
	t.Logf("the kubelet's summary has no skiff-relay container in %s", pod)
	return 0, 0
}

// mustStatus GETs u and fails unless it answers want; it returns the body.
func mustStatus(t *testing.T, u string, want int) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", u, resp.StatusCode, b, want)
	}
	return string(b)
}

// podStats reads a pod's /stats through the API server's pod proxy, as
// skiff status -o wide and top do.
func podStats(t *testing.T, c *cluster, ns, pod, window string) stats.Window {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := c.kc.Clientset.CoreV1().Pods(ns).ProxyGet("http", pod, "9091", "stats", map[string]string{"window": window}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("/stats of %s: %v", pod, err)
	}
	var w stats.Window
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("/stats of %s: %v\n%s", pod, err, b)
	}
	return w
}

// promQuery runs an instant query; ok is false when it has no result.
func promQuery(t *testing.T, prom, query string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		t.Fatalf("query %s: %v %s", query, err, out.Error)
	}
	if len(out.Data.Result) == 0 {
		return 0, false
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// promWait polls query until ok accepts its value (Prometheus scrapes
// every second).
func promWait(t *testing.T, prom, query string, ok func(float64) bool) {
	t.Helper()
	var last float64
	var had bool
	deadline := time.Now().Add(2 * time.Minute)
	for {
		last, had = promQuery(t, prom, query)
		if had && ok(last) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus: %s = %v (result: %v), not what the test made", query, last, had)
		}
		time.Sleep(500 * time.Millisecond) // polling Prometheus, with a deadline
	}
}

// bucketCeil is the upper bound of the proxy's duration bucket v falls in.
func bucketCeil(v float64) float64 {
	for _, b := range stats.Bounds() {
		if v <= b {
			return b
		}
	}
	return math.Inf(1)
}
