package chart

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

const eventsDoc = `apiVersion: skiff.dev/v1alpha1
name: shop
events:
  bus: nats://nats.nats.svc.cluster.local:4222
  relayImage: registry.example.com/skiff-relay@sha256:1111111111111111111111111111111111111111111111111111111111111111
workloads:
  - name: thumbs
    kind: function
    lang: go
    port: 9000
    scale: {min: 0, max: 4}
    triggers:
      - event: com.example.image.uploaded
        source: /uploads
      - schedule: "*/5 * * * *"
        timeZone: Europe/Berlin
    delivery: {retries: 5, backoff: 2s, timeout: 40s, concurrency: 4}
  - name: orders
    kind: service
    lang: go
`

func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func TestRenderEvents(t *testing.T) {
	objs := renderAll(t, eventsDoc, "thumbs")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/thumbs"]), &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	assertRestricted(t, spec)
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "skiff-relay" {
		t.Fatalf("init containers: %+v, want the skiff-relay sidecar", spec.InitContainers)
	}
	rc := spec.InitContainers[0]
	if rc.RestartPolicy == nil || *rc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("skiff-relay is not a native sidecar (restartPolicy: Always): it would block the pod's start")
	}
	// The relay's readiness probe, here (proxy and scale), is the
	// workload's: never the relay's own /readyz, which a bus outage fails
	// and would take the workload out of its Service.
	if rp := rc.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/workload/ready" {
		t.Errorf("the relay's readiness probe %+v, want the workload's (/workload/ready)", rp)
	}
	if rc.StartupProbe != nil {
		t.Error("a startup probe on the relay delays every wake from zero by up to its period")
	}
	re := env(rc)
	for k, want := range map[string]string{
		"SKIFF_RELAY_BUS": "nats://nats.nats.svc.cluster.local:4222", "SKIFF_RELAY_STREAM": "shop", "SKIFF_RELAY_WORKLOAD": "thumbs",
		"SKIFF_RELAY_TARGET": "http://127.0.0.1:9000/", "SKIFF_RELAY_READY": "http://127.0.0.1:9000/readyz",
		"SKIFF_RELAY_RETRIES": "5", "SKIFF_RELAY_BACKOFF": "2s", "SKIFF_RELAY_TIMEOUT": "40s", "SKIFF_RELAY_SINK": "127.0.0.1:8099",
		"SKIFF_RELAY_CONCURRENCY": "4",
	} {
		if re[k] != want {
			t.Errorf("relay %s = %q, want %q", k, re[k], want)
		}
	}
	var triggers []relay.Trigger
	if err := json.Unmarshal([]byte(re["SKIFF_RELAY_TRIGGERS"]), &triggers); err != nil || len(triggers) != 2 {
		t.Fatalf("SKIFF_RELAY_TRIGGERS %q: %v", re["SKIFF_RELAY_TRIGGERS"], err)
	}
	if triggers[0].Filter != "shop.com.example.image.uploaded" || triggers[0].Source != "/uploads" ||
		!strings.HasPrefix(triggers[1].Filter, "shop.dev.skiff.schedule.thumbs.") {
		t.Errorf("triggers: %+v", triggers)
	}
	fn := spec.Containers[0]
	if got := env(fn)["K_SINK"]; got != "http://127.0.0.1:8099/" {
		t.Errorf("K_SINK = %q", got)
	}
	if fn.Lifecycle == nil || fn.Lifecycle.PreStop == nil || fn.Lifecycle.PreStop.HTTPGet == nil ||
		fn.Lifecycle.PreStop.HTTPGet.Path != "/drain" || fn.Lifecycle.PreStop.HTTPGet.Port.IntValue() != 9091 {
		t.Errorf("the function's preStop does not drain its relay: %+v", fn.Lifecycle)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 40+10 {
		t.Errorf("grace period %v: shorter than a delivery's timeout, 40s, and the drain", g)
	}

	// KEDA scales on each consumer's lag, next to the HTTP add-on.
	var so scaledObject
	if err := yaml.Unmarshal([]byte(objs["ScaledObject/thumbs"]), &so); err != nil {
		t.Fatal(err)
	}
	var nats []map[string]string
	for _, tr := range so.Spec.Triggers {
		if tr.Type == "nats-jetstream" {
			nats = append(nats, tr.Metadata)
		}
	}
	if len(nats) != 2 || len(so.Spec.Triggers) != 3 {
		t.Fatalf("ScaledObject triggers: %+v, want the add-on's and one nats-jetstream per consumer", so.Spec.Triggers)
	}
	for i, m := range nats {
		if m["consumer"] != triggers[i].Consumer || m["stream"] != "shop" || m["account"] != "$G" ||
			m["natsServerMonitoringEndpoint"] != "nats.nats.svc.cluster.local:8222" || m["activationLagThreshold"] != "0" {
			t.Errorf("nats-jetstream trigger %d: %v", i, m)
		}
	}

	// The schedule is a CronJob that publishes its tick.
	var cjs []batchv1.CronJob
	for k, v := range objs {
		if strings.HasPrefix(k, "CronJob/") {
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict([]byte(v), &cj); err != nil {
				t.Fatal(err)
			}
			cjs = append(cjs, cj)
		}
	}
	if len(cjs) != 1 {
		t.Fatalf("%d CronJobs, want 1", len(cjs))
	}
	cj := cjs[0]
	if cj.Spec.Schedule != "*/5 * * * *" || cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != "Europe/Berlin" ||
		cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob spec: %+v", cj.Spec)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	tick := pod.Containers[0]
	args := strings.Join(tick.Args, " ")
	if tick.Image != rc.Image || !strings.Contains(args, "publish") || !strings.Contains(args, "--subject="+triggers[1].Filter) ||
		!strings.Contains(args, "--job=$(JOB_NAME)") {
		t.Errorf("the tick runs %s %s; want the relay image publishing on %s", tick.Image, args, triggers[1].Filter)
	}
	pod.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	assertRestricted(t, pod)

	// A workload with no triggers gets the sink alone: no consumers, no
	// CronJob, and a drain only for its proxy (TestRenderProxy).
	objs = renderAll(t, eventsDoc, "orders")
	var od appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/orders"]), &od); err != nil {
		t.Fatal(err)
	}
	if len(od.Spec.Template.Spec.InitContainers) != 1 || env(od.Spec.Template.Spec.Containers[0])["K_SINK"] == "" {
		t.Error("orders, in a project with events, has no relay or K_SINK")
	}
	proxied := env(od.Spec.Template.Spec.InitContainers[0])["SKIFF_RELAY_PROXY"] != ""
	if drains := od.Spec.Template.Spec.Containers[0].Lifecycle != nil; drains != proxied {
		t.Errorf("orders has no triggers; a preStop drain: %v, with the proxy: %v", drains, proxied)
	}
}

func TestRenderWithoutEvents(t *testing.T) {
	objs := renderAll(t, "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - {name: orders, kind: service, lang: go}\n", "orders")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/orders"]), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Template.Spec.InitContainers) != 0 || env(d.Spec.Template.Spec.Containers[0])["K_SINK"] != "" {
		t.Error("a project without events got the relay")
	}
}

// A scaled function with triggers keeps its pods for the whole idle after
// KEDA last saw events waiting: lag has no window as request rate has.
func TestRenderEventsCooldown(t *testing.T) {
	objs := renderAll(t, strings.Replace(eventsDoc, "scale: {min: 0, max: 4}", "scale: {min: 0, max: 4, idle: 2m}", 1), "thumbs")
	var so scaledObject
	if err := yaml.Unmarshal([]byte(objs["ScaledObject/thumbs"]), &so); err != nil {
		t.Fatal(err)
	}
	if so.Spec.CooldownPeriod != 120 {
		t.Errorf("cooldownPeriod = %d, want the whole idle, 120", so.Spec.CooldownPeriod)
	}
}

// The relay with events runs with Go's default threads unless
// events.goMaxProcs says how many; the proxy alone never gets it.
func TestRenderEventsRelayThreads(t *testing.T) {
	p, err := project.Parse([]byte(eventsDoc))
	if err != nil {
		t.Fatal(err)
	}
	p.RelayImage = relayImg
	for _, tc := range []struct {
		overrides map[string]any
		want      string
	}{
		{nil, ""},
		{map[string]any{"events": map[string]any{"goMaxProcs": 1}}, "1"},
		{map[string]any{"events": map[string]any{"goMaxProcs": 0}}, ""},
	} {
		objs := splitObjects(t, renderRelease(t, p, "thumbs", "shop", tc.overrides))
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(objs["Deployment/thumbs"]), &d); err != nil {
			t.Fatal(err)
		}
		got, ok := env(d.Spec.Template.Spec.InitContainers[0])["GOMAXPROCS"]
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("with %v: the relay's GOMAXPROCS = %q (set: %v), want %q", tc.overrides, got, ok, tc.want)
		}
	}
	// The proxy alone: not even when the value is set.
	pp, err := project.Parse([]byte(proxyDoc))
	if err != nil {
		t.Fatal(err)
	}
	pp.RelayImage = relayImg
	objs := splitObjects(t, renderRelease(t, pp, "orders", "shop", map[string]any{"events": map[string]any{"goMaxProcs": 1}}))
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/orders"]), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Template.Spec.InitContainers) != 1 {
		t.Fatalf("the proxy alone: %d init containers, want its relay", len(d.Spec.Template.Spec.InitContainers))
	}
	if v, ok := env(d.Spec.Template.Spec.InitContainers[0])["GOMAXPROCS"]; ok {
		t.Errorf("the relay of the proxy alone has GOMAXPROCS %q", v)
	}
}
