package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

// fakeRelay serves GET /stats?window= as skiff-relay does, from figures
// given per pod; the proxy reactor below hands it the API server's pod
// proxy requests.
type fakeRelay struct {
	windows map[string]stats.Window // by pod
	asked   map[string]string       // pod → the port:path?query asked
	fail    map[string]int          // pod → HTTP status to answer
}

func (f *fakeRelay) react(action k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
	pa := action.(k8stesting.ProxyGetAction)
	q := url.Values{}
	for k, v := range pa.GetParams() {
		q.Set(k, v)
	}
	f.asked[pa.GetName()] = pa.GetPort() + "/" + pa.GetPath() + "?" + q.Encode()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/"+pa.GetPath()+"?"+q.Encode(), nil)
	if code := f.fail[pa.GetName()]; code != 0 {
		http.Error(rec, "boom", code)
	} else if _, err := time.ParseDuration(req.URL.Query().Get("window")); err != nil {
		http.Error(rec, "bad window", http.StatusBadRequest)
	} else {
		_ = json.NewEncoder(rec).Encode(f.windows[pa.GetName()])
	}
	return true, response{rec.Result()}, nil
}

type response struct{ *http.Response }

func (r response) DoRaw(context.Context) ([]byte, error) {
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		return body, fmt.Errorf("the server responded %s: %s", r.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func (r response) Stream(context.Context) (io.ReadCloser, error) { return r.Body, nil }

func pod(name, instance string, ready bool, sidecarPort int32, appPort bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/instance": instance}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}},
	}
	if ready {
		p.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	if sidecarPort != 0 {
		port := corev1.ContainerPort{Name: AdminPort, ContainerPort: sidecarPort}
		if appPort {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "skiff-relay", Ports: []corev1.ContainerPort{port}})
		} else {
			p.Spec.InitContainers = []corev1.Container{{Name: "skiff-relay", Ports: []corev1.ContainerPort{port}}}
		}
	}
	return p
}

func window(start time.Time, requests, errors int64, durations ...float64) stats.Window {
	w := stats.Window{Start: start, End: start.Add(5 * time.Minute), Pods: 1, Requests: requests, Errors: errors,
		Duration: stats.Histogram{Bounds: stats.Bounds(), Counts: make([]int64, len(stats.Bounds())+1)}}
	for _, d := range durations {
		i := 0
		for i < len(w.Duration.Bounds) && d > w.Duration.Bounds[i] {
			i++
		}
		w.Duration.Counts[i]++
		w.Duration.Sum += d
	}
	return w
}

func TestPodsReadsEachReadyPodAndMerges(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	objs := []runtime.Object{
		pod("orders-5d8f-aaaaa", "shop-orders", true, 9091, false), // native sidecar
		pod("orders-5d8f-bbbbb", "shop-orders", true, 9091, true),  // plain container
		pod("orders-5d8f-ccccc", "shop-orders", false, 9091, false),
		pod("orders-5d8f-ddddd", "shop-orders", true, 0, false),
		pod("orders-5d8f-eeeee", "shop-orders", true, 9091, false),
		pod("payments-77c9-fffff", "shop-payments", true, 9091, false),
	}
	cs := fake.NewClientset(objs...)
	relay := &fakeRelay{
		windows: map[string]stats.Window{
			"orders-5d8f-aaaaa": window(t0, 3, 1, 0.002, 0.003, 0.2),
			"orders-5d8f-bbbbb": window(t0.Add(time.Second), 1, 0, 0.004),
			"orders-5d8f-ccccc": window(t0, 1000, 1000),
		},
		asked: map[string]string{},
		fail:  map[string]int{"orders-5d8f-eeeee": http.StatusServiceUnavailable},
	}
	cs.PrependProxyReactor("pods", relay.react)
	p := &Pods{Client: cs, Namespace: "shop"}
	got, err := p.Read(context.Background(), []Target{
		{Workload: "orders", Selector: "app.kubernetes.io/instance=shop-orders"},
		{Workload: "idle", Selector: "app.kubernetes.io/instance=shop-idle"},
	}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Workload != "orders" || got[1].Workload != "idle" {
		t.Fatalf("read %+v", got)
	}
	o := got[0]
	if o.Source != engine.SourcePods || o.Window.Pods != 2 || o.Window.Requests != 4 || o.Window.Errors != 1 || o.Window.Duration.Count() != 4 {
		t.Errorf("orders merged: source %s, pods %d, requests %d, errors %d, durations %d; want pods 2, 4 requests, 1 error, 4 durations",
			o.Source, o.Window.Pods, o.Window.Requests, o.Window.Errors, o.Window.Duration.Count())
	}
	if _, ok := o.Pods["orders-5d8f-ccccc"]; ok {
		t.Error("a pod that is not ready was read")
	}
	if len(o.Pods) != 2 {
		t.Errorf("pods read: %v", o.Pods)
	}
	if why := o.Unread["orders-5d8f-ddddd"]; !strings.Contains(why, "no relay-admin port") {
		t.Errorf("a pod without skiff-relay: %q", why)
	}
	if why := o.Unread["orders-5d8f-eeeee"]; !strings.Contains(why, "503") {
		t.Errorf("a relay that answers 503: %q", why)
	}
	if a := relay.asked["orders-5d8f-aaaaa"]; a != "9091/stats?window=5m" {
		t.Errorf("asked the relay %q", a)
	}
	if _, asked := relay.asked["payments-77c9-fffff"]; asked {
		t.Error("read a pod of another workload")
	}
	if i := got[1]; i.Window.Pods != 0 || !i.Window.Idle() || len(i.Unread) != 0 {
		t.Errorf("a workload at zero pods: %+v", i)
	}
}

func TestPodsFailsWhenPodsCannotBeListed(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New(`pods is forbidden: User "dev" cannot list resource "pods"`)
	})
	_, err := (&Pods{Client: cs, Namespace: "shop"}).Read(context.Background(), []Target{{Workload: "orders", Selector: "a=b"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "listing the pods of orders") || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("error %v", err)
	}
}

func TestFormatWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 90 * time.Second: "90s", 10 * time.Second: "10s", 1500 * time.Millisecond: "2s", 0: "1s", time.Hour: "60m",
	} {
		if got := formatWindow(d); got != want {
			t.Errorf("formatWindow(%s) = %q, want %q", d, got, want)
		}
		if _, err := time.ParseDuration(formatWindow(d)); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// A Prometheus that is a Service of the cluster is asked through the API
// server's service proxy; any other URL is not a Service.
func TestServiceGetter(t *testing.T) {
	cs := fake.NewClientset()
	var asked string
	cs.PrependProxyReactor("services", func(action k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
		pa := action.(k8stesting.ProxyGetAction)
		asked = fmt.Sprintf("%s %s/%s:%s %s query=%s", pa.GetScheme(), pa.GetNamespace(), pa.GetName(), pa.GetPort(), pa.GetPath(), pa.GetParams()["query"])
		rec := httptest.NewRecorder()
		fmt.Fprint(rec, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		return true, response{rec.Result()}, nil
	})
	for raw, want := range map[string]string{
		"http://prometheus.monitoring.svc:9090":               "http monitoring/prometheus:9090 /api/v1/query query=up",
		"https://prom.obs.svc.cluster.local/prefix/":          "https obs/prom:443 /prefix/api/v1/query query=up",
		"http://prometheus.monitoring.svc.cluster.local:9090": "http monitoring/prometheus:9090 /api/v1/query query=up",
	} {
		u, _ := url.Parse(raw)
		get, ok := ServiceGetter(cs, u)
		if !ok {
			t.Errorf("%s: not read as a Service", raw)
			continue
		}
		if _, err := get(context.Background(), "/api/v1/query", url.Values{"query": {"up"}}); err != nil || asked != want {
			t.Errorf("%s: asked %q (%v), want %q", raw, asked, err, want)
		}
	}
	for _, raw := range []string{"http://127.0.0.1:9090", "http://prometheus.monitoring:9090", "https://prom.example.com", "http://a.b.c.svc:9090"} {
		u, _ := url.Parse(raw)
		if _, ok := ServiceGetter(cs, u); ok {
			t.Errorf("%s read as a Service", raw)
		}
	}
}
