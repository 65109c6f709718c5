package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

// Prometheus reads the figures by PromQL from a Prometheus that scrapes
// the pods' skiff-relay (/metrics on the relay-admin port). Its series are
// matched to a workload by the `namespace` and `pod` labels, as
// Prometheus' kubernetes-pods scrape job sets them: a workload's pods are
// named after its Deployment. Counts are increase() over the window,
// rounded; a pod gone in the window still counts, so a workload at zero
// pods shows what it served before.
type Prometheus struct {
	// Get asks the Prometheus' HTTP API: GET path?query, the body of a 2xx
	// answer (HTTPGetter, ServiceGetter).
	Get       func(ctx context.Context, path string, query url.Values) ([]byte, error)
	Namespace string
	// NamespaceLabel and PodLabel name the labels of the pods' series
	// ("namespace" and "pod" when empty).
	NamespaceLabel, PodLabel string
	// Now is the clock the queries are evaluated at (time.Now when nil).
	Now func() time.Time
}

var _ Reader = (*Prometheus)(nil)

// HTTPGetter asks the Prometheus at base (e.g. http://127.0.0.1:9090)
// with client (http.DefaultClient when nil).
func HTTPGetter(base string, client *http.Client) func(context.Context, string, url.Values) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base = strings.TrimSuffix(base, "/")
	return func(ctx context.Context, path string, q url.Values) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return body, fmt.Errorf("%s answered %s: %s", base, resp.Status, apiError(body))
		}
		return body, nil
	}
}

// ServiceGetter asks a Prometheus that is a Service of the cluster
// (http://NAME.NAMESPACE.svc[.cluster.local]:PORT[/prefix]) through the
// API server's service proxy; ok is false when u names no Service.
func ServiceGetter(cs kubernetes.Interface, u *url.URL) (get func(context.Context, string, url.Values) ([]byte, error), ok bool) {
	host := strings.TrimSuffix(u.Hostname(), ".cluster.local")
	if !strings.HasSuffix(host, ".svc") {
		return nil, false
	}
	name, ns, found := strings.Cut(strings.TrimSuffix(host, ".svc"), ".")
	if !found || name == "" || ns == "" || strings.Contains(ns, ".") {
		return nil, false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	return func(ctx context.Context, path string, q url.Values) ([]byte, error) {
		params := map[string]string{}
		for k := range q {
			params[k] = q.Get(k)
		}
		body, err := cs.CoreV1().Services(ns).ProxyGet(u.Scheme, name, port, prefix+path, params).DoRaw(ctx)
		if err != nil {
			return body, fmt.Errorf("asking Prometheus (Service %s/%s, port %s, through the API server): %s", ns, name, port, apiErrorOr(body, err))
		}
		return body, nil
	}, true
}

// Read queries the figures of every target over window, at once.
func (p *Prometheus) Read(ctx context.Context, ts []Target, window time.Duration) ([]engine.WorkloadStats, error) {
	out := make([]engine.WorkloadStats, len(ts))
	if len(ts) == 0 {
		return out, nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	end := now()
	q := &query{p: p, at: end, window: "[" + formatWindow(window) + "]"}
	var alts []string
	pats := make([]*regexp.Regexp, len(ts))
	for i, t := range ts {
		out[i] = engine.WorkloadStats{Workload: t.Workload, Source: engine.SourcePrometheus, Pods: map[string]stats.Window{}}
		pat := podPattern(t.Deployment)
		alts = append(alts, pat)
		pats[i] = regexp.MustCompile("^(?:" + pat + ")$")
	}
	q.match = fmt.Sprintf(`%s=%q,%s=~%q`, p.label(p.NamespaceLabel, "namespace"), p.Namespace, p.label(p.PodLabel, "pod"), strings.Join(alts, "|"))
	pod := p.label(p.PodLabel, "pod")

	pods := map[string]*stats.Window{}
	at := func(s sample) *stats.Window {
		name := s.metric[pod]
		w := pods[name]
		if w == nil {
			w = &stats.Window{Start: end.Add(-window), End: end, Pods: 1}
			pods[name] = w
		}
		return w
	}
	trig := func(s sample, f func(*stats.Trigger)) {
		w := at(s)
		if w.Triggers == nil {
			w.Triggers = map[string]stats.Trigger{}
		}
		t := w.Triggers[s.metric["trigger"]]
		f(&t)
		w.Triggers[s.metric["trigger"]] = t
	}
	type histKey struct{ pod, trigger, kind string }
	hists := map[histKey][]point{}
	bucket := func(kind string) func(sample) {
		return func(s sample) {
			le, err := strconv.ParseFloat(s.metric["le"], 64)
			if err != nil {
				return
			}
			if kind == "latency" {
				trig(s, func(*stats.Trigger) {})
			} else {
				at(s)
			}
			k := histKey{s.metric[pod], s.metric["trigger"], kind}
			hists[k] = append(hists[k], point{le, s.value})
		}
	}
	by := "sum by (" + pod + ") "
	byLe := "sum by (" + pod + ", le) "
	byTrigger := "sum by (" + pod + ", trigger) "
	byTriggerLe := "sum by (" + pod + ", trigger, le) "
	steps := []struct {
		promql string
		each   func(sample)
	}{
		{by + "(increase(http_server_request_duration_seconds_count{M}W))", func(s sample) { at(s).Requests = count(s.value) }},
		{by + `(increase(http_server_request_duration_seconds_count{M,http_response_status_code=~"5.."}W))`, func(s sample) { at(s).Errors = count(s.value) }},
		{by + "(http_server_active_requests{M})", func(s sample) { at(s).InFlight = count(s.value) }},
		{byLe + "(increase(http_server_request_duration_seconds_bucket{M}W))", bucket("duration")},
		{by + "(increase(http_server_request_duration_seconds_sum{M}W))", func(s sample) { at(s).Duration.Sum = s.value }},
		{by + "(increase(skiff_cold_starts_total{M}W))", func(s sample) { at(s).ColdStarts = count(s.value) }},
		{byLe + "(increase(skiff_cold_start_wait_seconds_bucket{M}W))", bucket("coldStartWait")},
		{by + "(increase(skiff_cold_start_wait_seconds_sum{M}W))", func(s sample) { at(s).ColdStartWait.Sum = s.value }},
		{byTrigger + "(increase(skiff_relay_delivered_total{M}W))", func(s sample) { trig(s, func(t *stats.Trigger) { t.Delivered = count(s.value) }) }},
		{byTrigger + "(increase(skiff_relay_delivery_failed_total{M}W))", func(s sample) { trig(s, func(t *stats.Trigger) { t.Failed = count(s.value) }) }},
		{byTrigger + "(increase(skiff_relay_retried_total{M}W))", func(s sample) { trig(s, func(t *stats.Trigger) { t.Retried = count(s.value) }) }},
		{byTrigger + "(increase(skiff_relay_dead_lettered_total{M}W))", func(s sample) {
			trig(s, func(t *stats.Trigger) { t.DeadLettered = count(s.value) })
		}},
		{byTriggerLe + "(increase(skiff_relay_delivery_duration_seconds_bucket{M}W))", bucket("latency")},
		{byTrigger + "(increase(skiff_relay_delivery_duration_seconds_sum{M}W))", func(s sample) { trig(s, func(t *stats.Trigger) { t.Latency.Sum = s.value }) }},
		{"max by (" + pod + ", trigger) (skiff_relay_consumer_pending{M})", func(s sample) { trig(s, func(t *stats.Trigger) { t.Pending = count(s.value) }) }},
	}
	for _, st := range steps {
		samples, err := q.run(ctx, st.promql)
		if err != nil {
			return nil, err
		}
		for _, s := range samples {
			if s.metric[pod] != "" {
				st.each(s)
			}
		}
	}
	for k, cum := range hists {
		slices.SortFunc(cum, func(a, b point) int { return cmpFloat(a.le, b.le) })
		w := pods[k.pod]
		switch k.kind {
		case "duration":
			w.Duration = fromCumulative(cum, w.Duration.Sum)
		case "coldStartWait":
			w.ColdStartWait = fromCumulative(cum, w.ColdStartWait.Sum)
		case "latency":
			t := w.Triggers[k.trigger]
			t.Latency = fromCumulative(cum, t.Latency.Sum)
			w.Triggers[k.trigger] = t
		}
	}
	for name, w := range pods {
		for i := range ts {
			if pats[i].MatchString(name) {
				out[i].Pods[name] = *w
				break
			}
		}
	}
	for i := range out {
		out[i].Window = MergePods(out[i].Pods)
		if len(out[i].Pods) == 0 {
			out[i].Window.Start, out[i].Window.End = end.Add(-window), end
		}
	}
	return out, nil
}

func (p *Prometheus) label(set, def string) string {
	if set != "" {
		return set
	}
	return def
}

// query runs instant queries at one time, with {M} the pods' matcher and
// W the window's range.
type query struct {
	p      *Prometheus
	at     time.Time
	match  string
	window string
}

type sample struct {
	metric map[string]string
	value  float64
}

func (q *query) run(ctx context.Context, promql string) ([]sample, error) {
	promql = strings.ReplaceAll(strings.ReplaceAll(promql, "{M", "{"+q.match), "}W", "}"+q.window)
	v := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(q.at.UnixMilli())/1000, 'f', 3, 64)}}
	body, err := q.p.Get(ctx, "/api/v1/query", v)
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus: %w", err)
	}
	var resp struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("querying Prometheus: the answer is not its HTTP API's JSON (%v): %.80q; is metrics.prometheus the base URL of a Prometheus?", err, body)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("querying Prometheus (%s): %s: %s", promql, resp.ErrorType, resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("querying Prometheus (%s): a %s, not a vector", promql, resp.Data.ResultType)
	}
	out := make([]sample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			continue
		}
		out = append(out, sample{metric: r.Metric, value: f})
	}
	return out, nil
}

type point struct{ le, n float64 }

// fromCumulative makes a histogram of sorted cumulative points; counts
// are rounded, and never negative (increase() extrapolates each series on
// its own). Without a +Inf point, the last bucket is empty.
func fromCumulative(cum []point, sum float64) stats.Histogram {
	h := stats.Histogram{Sum: sum}
	var prev int64
	hasInf := false
	for _, p := range cum {
		n := max(count(p.n), prev)
		if math.IsInf(p.le, 1) {
			hasInf = true
		} else {
			h.Bounds = append(h.Bounds, p.le)
		}
		h.Counts = append(h.Counts, n-prev)
		prev = n
	}
	if !hasInf {
		h.Counts = append(h.Counts, 0)
	}
	return h
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// count rounds an increase() to a whole count.
func count(v float64) int64 { return int64(math.Round(max(v, 0))) }

func apiError(body []byte) string {
	var e struct{ ErrorType, Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.ErrorType + ": " + e.Error
	}
	return fmt.Sprintf("%.120q", body)
}

func apiErrorOr(body []byte, err error) string {
	if len(body) > 0 {
		if s := apiError(body); !strings.HasPrefix(s, `"`) {
			return s
		}
	}
	return err.Error()
}
