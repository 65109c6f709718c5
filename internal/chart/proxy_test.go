package chart

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

const relayImg = "registry.example.com/skiff-relay@sha256:2222222222222222222222222222222222222222222222222222222222222222"

const proxyDoc = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: orders
    kind: service
    lang: go
  - name: thumbs
    kind: function
    lang: python
    port: 8012
    scale: {min: 0, max: 3}
`

// renderProxy renders workload name of doc as deploy does when it knows
// a relay image.
func renderProxy(t *testing.T, doc, name string) (corev1.PodSpec, map[string]string, map[string]string) {
	t.Helper()
	p, err := project.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p.RelayImage = relayImg
	objs := splitObjects(t, renderRelease(t, p, name, "shop", nil))
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/"+name]), &d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec, d.Spec.Template.Annotations, objs
}

func servicePort(t *testing.T, doc string) corev1.ServicePort {
	t.Helper()
	var svc corev1.Service
	if err := yaml.UnmarshalStrict([]byte(doc), &svc); err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Ports[0]
}

func TestRenderProxy(t *testing.T) {
	spec, ann, objs := renderProxy(t, proxyDoc, "orders")
	assertRestricted(t, spec)
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "skiff-relay" || spec.InitContainers[0].Image != relayImg {
		t.Fatalf("init containers: %+v, want the skiff-relay sidecar", spec.InitContainers)
	}
	rc := spec.InitContainers[0]
	if rc.RestartPolicy == nil || *rc.RestartPolicy != corev1.ContainerRestartPolicyAlways || rc.ReadinessProbe != nil || rc.StartupProbe != nil {
		t.Errorf("the proxy's relay is not a probe-free native sidecar: %+v", rc)
	}
	re := env(rc)
	for k, want := range map[string]string{
		"SKIFF_RELAY_PROXY": ":8012", "SKIFF_RELAY_TARGET": "http://127.0.0.1:8080/", "SKIFF_RELAY_ADMIN": ":9091",
		"SKIFF_RELAY_COLD_STARTS": "false", "SKIFF_RELAY_PROXY_TIMEOUT": "5m", "GOMEMLIMIT": "24MiB", "GOGC": "50",
	} {
		if re[k] != want {
			t.Errorf("relay %s = %q, want %q", k, re[k], want)
		}
	}
	for _, k := range []string{"SKIFF_RELAY_BUS", "SKIFF_RELAY_STREAM", "SKIFF_RELAY_SINK"} {
		if _, ok := re[k]; ok {
			t.Errorf("a workload without events gives its relay %s: it would connect to a bus", k)
		}
	}
	if _, ok := env(spec.Containers[0])["K_SINK"]; ok {
		t.Error("a workload without events has K_SINK")
	}
	// The relay holds the workload's stop until its endpoint is gone
	// (no request for a second).
	if lc := spec.Containers[0].Lifecycle; lc == nil || lc.PreStop == nil || lc.PreStop.HTTPGet == nil ||
		lc.PreStop.HTTPGet.Path != "/drain" || lc.PreStop.HTTPGet.Port.IntValue() != 9091 {
		t.Errorf("the workload's stop does not wait for its relay's /drain: %+v", lc)
	}
	// Probes keep asking the workload itself.
	if p := spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet.Port.String() != "http" {
		t.Errorf("readiness goes through the proxy: %+v", p)
	}
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "9091" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v", ann)
	}
	// Callers keep the workload's port; the Service hands them to the proxy.
	if sp := servicePort(t, objs["Service/orders"]); sp.Port != 8080 || sp.TargetPort.IntValue() != 8012 {
		t.Errorf("Service port %v → %v, want 8080 → 8012", sp.Port, sp.TargetPort.String())
	}
	if got := rc.Ports; len(got) != 2 || got[1].ContainerPort != 8012 {
		t.Errorf("relay ports %+v", got)
	}
}

func TestRenderProxyScaledFromZero(t *testing.T) {
	spec, _, objs := renderProxy(t, proxyDoc, "thumbs")
	re := env(spec.InitContainers[0])
	// Readiness is the relay's probe, which holds while the workload does
	// not listen yet and asks its own readiness path; the relay's probe
	// worker starts before the workload does. The workload's container
	// has none (ready once it runs), so the relay's decides the pod's.
	rp := spec.InitContainers[0].ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/workload/ready" || rp.HTTPGet.Port.String() != "relay-admin" ||
		rp.TimeoutSeconds != 2 || rp.PeriodSeconds != 1 || rp.FailureThreshold != 3 {
		t.Errorf("the relay's readiness probe %+v, want /workload/ready on its admin port", rp)
	}
	if p := spec.Containers[0].ReadinessProbe; p != nil {
		t.Errorf("the workload's container has a readiness probe of its own: %+v", p)
	}
	if sp := spec.InitContainers[0].StartupProbe; sp != nil {
		t.Errorf("the relay has a startup probe, which would delay the workload's start: %+v", sp)
	}
	if re["SKIFF_RELAY_READY"] != "http://127.0.0.1:8012/readyz" {
		t.Errorf("the relay asks %q for the workload's readiness", re["SKIFF_RELAY_READY"])
	}
	if lp := spec.Containers[0].LivenessProbe; lp == nil || lp.HTTPGet.Port.String() != "http" {
		t.Errorf("liveness goes through the relay: %+v", lp)
	}
	// The workload has the proxy's usual port: the proxy takes the next.
	if re["SKIFF_RELAY_COLD_STARTS"] != "true" || re["SKIFF_RELAY_PROXY"] != ":8013" || re["SKIFF_RELAY_TARGET"] != "http://127.0.0.1:8012/" {
		t.Errorf("relay env %v", re)
	}
	// The interceptor reaches the pods through <workload>-pods: the proxy.
	if sp := servicePort(t, objs["Service/thumbs-pods"]); sp.TargetPort.IntValue() != 8013 {
		t.Errorf("thumbs-pods targets %v, want the proxy's 8013", sp.TargetPort.String())
	}
}

func TestRenderProxyOff(t *testing.T) {
	off := strings.Replace(proxyDoc, "workloads:", "metrics: {proxy: false}\nworkloads:", 1)
	spec, ann, objs := renderProxy(t, off, "orders")
	if len(spec.InitContainers) != 0 || ann["prometheus.io/scrape"] != "" {
		t.Errorf("metrics.proxy false still runs the relay: %+v %v", spec.InitContainers, ann)
	}
	if sp := servicePort(t, objs["Service/orders"]); sp.TargetPort.String() != "http" {
		t.Errorf("the Service targets %v, want the workload's port", sp.TargetPort.String())
	}
	// Without a relay, readiness asks the workload itself; so it does with
	// a relay for events alone, which must not hold it while it reaches the bus.
	spec, _, _ = renderProxy(t, off, "thumbs")
	if rp := spec.Containers[0].ReadinessProbe; rp == nil || rp.HTTPGet.Port.String() != "http" || rp.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness without a relay: %+v", rp)
	}
	spec, _, _ = renderProxy(t, strings.Replace(eventsDoc, "workloads:", "metrics: {proxy: false}\nworkloads:", 1), "thumbs")
	if rp := spec.Containers[0].ReadinessProbe; len(spec.InitContainers) != 1 || rp == nil || rp.HTTPGet.Port.String() != "http" {
		t.Errorf("readiness with the relay of events alone: %+v", rp)
	}
	// No relay image known: no proxy, and the render does not fail.
	p, err := project.Parse([]byte(proxyDoc))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("orders")
	if _, ok := Values(p, w, "shop", image)["proxy"]; ok {
		t.Error("proxy values without a relay image")
	}
}

func TestRenderProxyWithEvents(t *testing.T) {
	spec, _, objs := renderProxy(t, eventsDoc, "thumbs")
	re := env(spec.InitContainers[0])
	if re["SKIFF_RELAY_PROXY"] != ":8012" || re["SKIFF_RELAY_STREAM"] != "shop" || re["SKIFF_RELAY_SINK"] != "127.0.0.1:8099" || re["SKIFF_RELAY_COLD_STARTS"] != "true" {
		t.Errorf("one relay does proxy and events: %v", re)
	}
	if _, ok := re["GOMEMLIMIT"]; ok {
		t.Error("the events' relay runs under the proxy's memory limit")
	}
	if sp := servicePort(t, objs["Service/thumbs-pods"]); sp.TargetPort.IntValue() != 8012 {
		t.Errorf("thumbs-pods targets %v", sp.TargetPort.String())
	}
}

// A workload with the proxy and without a startup probe has its readiness
// on the relay, scaled or not; one with a startup probe keeps it on its
// own container (readiness starts after the startup probe passed anyway).
func TestRenderProxyReadinessWithoutStartupProbe(t *testing.T) {
	p, err := project.Parse([]byte(proxyDoc))
	if err != nil {
		t.Fatal(err)
	}
	p.RelayImage = relayImg
	for _, tc := range []struct {
		startupProbe, onRelay bool
	}{{false, true}, {true, false}} {
		objs := splitObjects(t, renderRelease(t, p, "orders", "shop", map[string]any{"probes": map[string]any{"startupProbe": tc.startupProbe}}))
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(objs["Deployment/orders"]), &d); err != nil {
			t.Fatal(err)
		}
		spec := d.Spec.Template.Spec
		relay, app := spec.InitContainers[0].ReadinessProbe, spec.Containers[0].ReadinessProbe
		if tc.onRelay && (relay == nil || relay.HTTPGet.Path != "/workload/ready" || app != nil) {
			t.Errorf("startupProbe %v: relay readiness %+v, workload readiness %+v; want the relay's alone", tc.startupProbe, relay, app)
		}
		if !tc.onRelay && (relay != nil || app == nil || app.HTTPGet.Path != "/readyz" || spec.Containers[0].StartupProbe == nil) {
			t.Errorf("startupProbe %v: relay readiness %+v, workload readiness %+v; want the workload's alone", tc.startupProbe, relay, app)
		}
	}
}
