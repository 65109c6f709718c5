package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
)

// exporter serves, as skiff-relay's /metrics would, the series of two pods
// of orders and one of another workload, in one scrape (honor_labels): all
// zero until loaded, then known figures.
type exporter struct{ loaded atomic.Bool }

var bounds = []string{"0.005", "0.01", "0.1", "1", "+Inf"}

func histogram(b *strings.Builder, name, labels string, cum []int, sum float64) {
	for i, le := range bounds {
		fmt.Fprintf(b, "%s_bucket{%sle=%q} %d\n", name, labels, le, cum[i])
	}
	fmt.Fprintf(b, "%s_sum{%s} %g\n%s_count{%s} %d\n", name, strings.TrimSuffix(labels, ","), sum, name, strings.TrimSuffix(labels, ","), cum[len(cum)-1])
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	on := 0
	if e.loaded.Load() {
		on = 1
	}
	z := func(cum ...int) []int {
		for i := range cum {
			cum[i] *= on
		}
		return cum
	}
	var b strings.Builder
	b.WriteString("# TYPE http_server_request_duration_seconds histogram\n")
	a := `namespace="shop",pod="orders-5d8f-aaaaa",`
	bb := `namespace="shop",pod="orders-5d8f-bbbbb",`
	other := `namespace="shop",pod="payments-77c9-ccccc",`
	elsewhere := `namespace="other",pod="orders-5d8f-ddddd",`
	// orders-a: 90 answered 200 (60 ≤ 5 ms, 25 ≤ 10 ms, 5 ≤ 100 ms), 10
	// answered 500 (all ≤ 1 s); orders-b: 20 answered 200 (≤ 5 ms).
	histogram(&b, "http_server_request_duration_seconds", a+`http_request_method="GET",http_response_status_code="200",`, z(60, 85, 90, 90, 90), 0.6*float64(on))
	histogram(&b, "http_server_request_duration_seconds", a+`http_request_method="GET",http_response_status_code="500",`, z(0, 0, 0, 10, 10), 4*float64(on))
	histogram(&b, "http_server_request_duration_seconds", bb+`http_request_method="GET",http_response_status_code="200",`, z(20, 20, 20, 20, 20), 0.05*float64(on))
	histogram(&b, "http_server_request_duration_seconds", other+`http_request_method="GET",http_response_status_code="200",`, z(500, 500, 500, 500, 500), 1*float64(on))
	histogram(&b, "http_server_request_duration_seconds", elsewhere+`http_request_method="GET",http_response_status_code="500",`, z(0, 0, 0, 0, 70), 700*float64(on))
	b.WriteString("# TYPE http_server_active_requests gauge\n")
	fmt.Fprintf(&b, "http_server_active_requests{%s} %d\nhttp_server_active_requests{%s} 0\n", strings.TrimSuffix(a, ","), 2*on, strings.TrimSuffix(bb, ","))
	b.WriteString("# TYPE skiff_cold_starts_total counter\n")
	fmt.Fprintf(&b, "skiff_cold_starts_total{%s} %d\n", strings.TrimSuffix(bb, ","), on)
	b.WriteString("# TYPE skiff_cold_start_wait_seconds histogram\n")
	histogram(&b, "skiff_cold_start_wait_seconds", bb, z(0, 0, 0, 1, 1), 0.8*float64(on))
	tr := a + `trigger="orders-created",`
	b.WriteString("# TYPE skiff_relay_delivered_total counter\n")
	fmt.Fprintf(&b, "skiff_relay_delivered_total{%s} %d\n", strings.TrimSuffix(tr, ","), 7*on)
	b.WriteString("# TYPE skiff_relay_delivery_failed_total counter\n")
	fmt.Fprintf(&b, "skiff_relay_delivery_failed_total{%s} %d\n", strings.TrimSuffix(tr, ","), 4*on)
	b.WriteString("# TYPE skiff_relay_retried_total counter\n")
	fmt.Fprintf(&b, "skiff_relay_retried_total{%s} %d\n", strings.TrimSuffix(tr, ","), 2*on)
	b.WriteString("# TYPE skiff_relay_dead_lettered_total counter\n")
	fmt.Fprintf(&b, "skiff_relay_dead_lettered_total{%s} %d\n", strings.TrimSuffix(tr, ","), on)
	b.WriteString("# TYPE skiff_relay_delivery_duration_seconds histogram\n")
	histogram(&b, "skiff_relay_delivery_duration_seconds", tr, z(0, 3, 7, 7, 7), 0.3*float64(on))
	b.WriteString("# TYPE skiff_relay_consumer_pending gauge\n")
	fmt.Fprintf(&b, "skiff_relay_consumer_pending{%s} %d\n", strings.TrimSuffix(tr, ","), 3)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// startPrometheus runs Debian's prometheus on loopback, scraping target
// every second, until the test ends.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("the prometheus binary is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: relay
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("prometheus:\n%s", out)
		}
	})
	base := "http://" + addr
	waitFor(t, "Prometheus ready", func() bool {
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", out)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// waitFor polls cond until it holds, failing after 60 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// instant asks the Prometheus for a vector's single value (and the time
// it was evaluated at).
func instant(t *testing.T, get func(context.Context, string, url.Values) ([]byte, error), promql string, at time.Time) (value float64, evaluated time.Time, ok bool) {
	t.Helper()
	q := url.Values{"query": {promql}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	body, err := get(context.Background(), "/api/v1/query", q)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Data.Result) != 1 {
		return 0, time.Time{}, false
	}
	v, _ := strconv.ParseFloat(resp.Data.Result[0].Value[1].(string), 64)
	sec := resp.Data.Result[0].Value[0].(float64)
	return v, time.UnixMilli(int64(math.Round(sec * 1000))), true
}

func TestPrometheusReadsWhatARealPrometheusScraped(t *testing.T) {
	exp := &exporter{}
	srv := httptest.NewServer(exp)
	defer srv.Close()
	base := startPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))
	get := HTTPGetter(base, nil)

	// Zeros first (so increase() starts from a sample at 0), then the load.
	scraped := func(v float64) func() bool {
		return func() bool {
			got, _, ok := instant(t, get, `sum(http_server_request_duration_seconds_count{pod="orders-5d8f-bbbbb"})`, time.Time{})
			return ok && got == v
		}
	}
	waitFor(t, "a scrape of zeros", scraped(0))
	exp.loaded.Store(true)
	waitFor(t, "a scrape of the load", scraped(20))
	// Evaluated at the last scrape, increase() has nothing to extrapolate.
	sec, _, _ := instant(t, get, `timestamp(up{job="relay"})`, time.Time{})
	last := time.UnixMilli(int64(math.Round(sec * 1000)))

	p := &Prometheus{Get: get, Namespace: "shop", Now: func() time.Time { return last }}
	got, err := p.Read(context.Background(), []Target{
		{Workload: "orders", Deployment: "orders"},
		{Workload: "idle", Deployment: "idle"},
	}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	o := got[0].Window
	if got[0].Source != engine.SourcePrometheus || o.Pods != 2 || o.Requests != 120 || o.Errors != 10 || o.InFlight != 2 {
		t.Errorf("orders: source %s, pods %d, requests %d, errors %d, in flight %d; want prometheus, 2 pods, 120, 10, 2",
			got[0].Source, o.Pods, o.Requests, o.Errors, o.InFlight)
	}
	if !equalBounds(o.Duration.Bounds, []float64{0.005, 0.01, 0.1, 1}) || fmt.Sprint(o.Duration.Counts) != "[80 25 5 10 0]" || math.Abs(o.Duration.Sum-4.65) > 1e-9 {
		t.Errorf("orders' durations: %+v", o.Duration)
	}
	if o.ColdStarts != 1 || o.ColdStartWait.Count() != 1 || math.Abs(o.ColdStartWait.Sum-0.8) > 1e-9 {
		t.Errorf("cold starts %d, their wait %+v", o.ColdStarts, o.ColdStartWait)
	}
	tr := o.Triggers["orders-created"]
	if tr.Delivered != 7 || tr.Retried != 2 || tr.DeadLettered != 1 || tr.Failed != 4 || tr.Pending != 3 || tr.Latency.Count() != 7 {
		t.Errorf("trigger: %+v", tr)
	}
	// skiff's p50 and p99 are Prometheus' own histogram_quantile.
	for _, q := range []float64{0.5, 0.99} {
		want, _, ok := instant(t, get, fmt.Sprintf(`histogram_quantile(%g, sum by (le) (increase(http_server_request_duration_seconds_bucket{namespace="shop",pod=~"orders-.*"}[5m])))`, q), last)
		if gotQ := o.Duration.Quantile(q); !ok || math.Abs(gotQ-want) > 1e-9 {
			t.Errorf("p%g: skiff %g, Prometheus %g", q*100, gotQ, want)
		}
	}
	if s := engine.Summarize(got[0], 5*time.Minute); s.RPS != 0.4 || s.ErrorPercent != 8.33 || s.ColdStartWait == nil || *s.ColdStartWait != 0.8 {
		t.Errorf("summary: rps %g, errors %g%%, cold start wait %v", s.RPS, s.ErrorPercent, s.ColdStartWait)
	}
	if i := got[1]; i.Window.Pods != 0 || !i.Window.Idle() || i.Window.End != last {
		t.Errorf("a workload with no series: %+v", i)
	}

	// A bad query names Prometheus' complaint.
	_, err = (&Prometheus{Get: get, Namespace: "shop", PodLabel: "bad label"}).Read(context.Background(), []Target{{Workload: "x", Deployment: "x"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("a bad query: %v", err)
	}
}

func equalBounds(a, b []float64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestPrometheusNotAPrometheus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>hello</html>") }))
	defer srv.Close()
	_, err := (&Prometheus{Get: HTTPGetter(srv.URL, nil), Namespace: "shop"}).Read(context.Background(), []Target{{Workload: "x", Deployment: "x"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "is metrics.prometheus the base URL of a Prometheus?") {
		t.Errorf("error %v", err)
	}
	srv404 := httptest.NewServer(http.NotFoundHandler())
	defer srv404.Close()
	_, err = (&Prometheus{Get: HTTPGetter(srv404.URL, nil), Namespace: "shop"}).Read(context.Background(), []Target{{Workload: "x", Deployment: "x"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("error %v", err)
	}
}
