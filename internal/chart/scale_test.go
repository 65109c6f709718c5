package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

// renderAll renders a workload of doc and returns its objects by
// "Kind/name".
func renderAll(t *testing.T, doc, name string) map[string]string {
	t.Helper()
	return renderAllWith(t, doc, name, nil)
}

// renderAllWith is renderAll with overrides over the workload's values.
func renderAllWith(t *testing.T, doc, name string, overrides map[string]any) map[string]string {
	t.Helper()
	p, err := project.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return splitObjects(t, renderRelease(t, p, name, "shop", overrides))
}

// renderRelease renders workload name of p into namespace ns with the
// base chart, overrides over its values.
func renderRelease(t *testing.T, p *project.Project, name, ns string, overrides map[string]any) string {
	t.Helper()
	w, _ := p.Workload(name)
	c, err := LoadBase()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(context.Background(), c, Merge(Values(p, w, ns, image), overrides), ReleaseName(p, w), ns)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// splitObjects returns the objects of a rendered release by "Kind/name".
func splitObjects(t *testing.T, out string) map[string]string {
	t.Helper()
	objs := map[string]string{}
	for _, d := range strings.Split(out, "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(d), &meta); err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, d)
		}
		if meta.Kind != "" {
			objs[meta.Kind+"/"+meta.Metadata.Name] = d
		}
	}
	return objs
}

// interceptorRoute and scaledObject hold the fields skiff sets, as the
// add-on's and KEDA's CRDs name them.
type interceptorRoute struct {
	Spec struct {
		Target struct {
			Service string `json:"service"`
			Port    int    `json:"port"`
		} `json:"target"`
		Rules []struct {
			Hosts []string `json:"hosts"`
		} `json:"rules"`
		ScalingMetric struct {
			Concurrency *struct {
				TargetValue int `json:"targetValue"`
			} `json:"concurrency"`
			RequestRate *struct {
				TargetValue int    `json:"targetValue"`
				Window      string `json:"window"`
				Granularity string `json:"granularity"`
			} `json:"requestRate"`
		} `json:"scalingMetric"`
		Timeouts struct {
			Readiness string `json:"readiness"`
		} `json:"timeouts"`
	} `json:"spec"`
}

type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount       *int `json:"minReplicaCount"`
		MaxReplicaCount       *int `json:"maxReplicaCount"`
		PollingInterval       int  `json:"pollingInterval"`
		CooldownPeriod        int  `json:"cooldownPeriod"`
		InitialCooldownPeriod int  `json:"initialCooldownPeriod"`
		Triggers              []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

func TestRenderScale(t *testing.T) {
	// rps 0 renders the request-rate metric anyway, with a target that
	// never asks for a pod: it tells KEDA the workload is in use.
	tests := []struct {
		scale                      string
		min, max                   int
		concurrency, rps           int
		window                     string
		cooldown, initial, polling int
		pdb                        bool
	}{
		{scale: "{min: 0}", max: 10, concurrency: 100, rps: 1000000, window: "60s", cooldown: 240, initial: 300, polling: 30},
		{scale: "{min: 0, max: 5, idle: 2m, concurrency: 20}", max: 5, concurrency: 20, rps: 1000000, window: "60s", cooldown: 60, initial: 120, polling: 12},
		{scale: "{min: 1, max: 3, idle: 5s, rps: 50}", min: 1, max: 3, rps: 50, window: "5s", cooldown: 0, initial: 5, polling: 1},
		{scale: "{min: 2, idle: 1h, concurrency: 10, rps: 40}", min: 2, max: 10, concurrency: 10, rps: 40, window: "60s", cooldown: 3540, initial: 3600, polling: 30, pdb: true},
	}
	for _, tc := range tests {
		t.Run(tc.scale, func(t *testing.T) {
			doc := fmt.Sprintf(`apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: thumbs
    kind: function
    lang: go
    port: 9000
    scale: %s
`, tc.scale)
			objs := renderAll(t, doc, "thumbs")

			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(objs["Deployment/thumbs"]), &d); err != nil {
				t.Fatal(err)
			}
			if d.Spec.Replicas != nil {
				t.Errorf("the Deployment sets replicas %d; KEDA owns them", *d.Spec.Replicas)
			}
			// A wake-up waits for readiness: no startup probe before it, and
			// liveness leaves a slow starter the startup probe's time.
			c := d.Spec.Template.Spec.Containers[0]
			if c.StartupProbe != nil || c.ReadinessProbe.PeriodSeconds != 1 || c.LivenessProbe.InitialDelaySeconds < 30 {
				t.Errorf("probes: startup %+v, readiness %+v, liveness %+v", c.StartupProbe, c.ReadinessProbe, c.LivenessProbe)
			}
			// Callers' Service leads to the interceptor; the pods have their own.
			var front, pods corev1.Service
			if err := yaml.UnmarshalStrict([]byte(objs["Service/thumbs"]), &front); err != nil {
				t.Fatal(err)
			}
			if front.Spec.Type != corev1.ServiceTypeExternalName || front.Spec.ExternalName != "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local" {
				t.Errorf("Service thumbs = %s %q, want ExternalName to the interceptor", front.Spec.Type, front.Spec.ExternalName)
			}
			if err := yaml.UnmarshalStrict([]byte(objs["Service/thumbs-pods"]), &pods); err != nil {
				t.Fatal(err)
			}
			if pods.Spec.Selector["app.kubernetes.io/instance"] != "shop-thumbs" || pods.Spec.Ports[0].Port != 9000 {
				t.Errorf("Service thumbs-pods selects %v on port %d", pods.Spec.Selector, pods.Spec.Ports[0].Port)
			}

			var ir interceptorRoute
			if err := yaml.Unmarshal([]byte(objs["InterceptorRoute/thumbs"]), &ir); err != nil {
				t.Fatal(err)
			}
			if ir.Spec.Target.Service != "thumbs-pods" || ir.Spec.Target.Port != 9000 {
				t.Errorf("route target = %+v", ir.Spec.Target)
			}
			if len(ir.Spec.Rules) != 1 || strings.Join(ir.Spec.Rules[0].Hosts, " ") != "thumbs.shop thumbs.shop.svc thumbs.shop.svc.cluster.local" {
				t.Errorf("route rules = %+v", ir.Spec.Rules)
			}
			m := ir.Spec.ScalingMetric
			if got := m.Concurrency != nil; got != (tc.concurrency > 0) || (got && m.Concurrency.TargetValue != tc.concurrency) {
				t.Errorf("concurrency = %+v, want %d", m.Concurrency, tc.concurrency)
			}
			if m.RequestRate == nil || m.RequestRate.TargetValue != tc.rps || m.RequestRate.Window != tc.window || m.RequestRate.Granularity != "1s" {
				t.Errorf("requestRate = %+v, want %d per %s", m.RequestRate, tc.rps, tc.window)
			}
			if ir.Spec.Timeouts.Readiness != "2m" {
				t.Errorf("readiness timeout = %q", ir.Spec.Timeouts.Readiness)
			}

			var so scaledObject
			if err := yaml.Unmarshal([]byte(objs["ScaledObject/thumbs"]), &so); err != nil {
				t.Fatal(err)
			}
			s := so.Spec
			if s.ScaleTargetRef.Kind != "Deployment" || s.ScaleTargetRef.Name != "thumbs" || s.MinReplicaCount == nil || *s.MinReplicaCount != tc.min || *s.MaxReplicaCount != tc.max {
				t.Errorf("ScaledObject = %+v", s)
			}
			if s.CooldownPeriod != tc.cooldown || s.InitialCooldownPeriod != tc.initial || s.PollingInterval != tc.polling {
				t.Errorf("cooldown %d, initial %d, polling %d; want %d, %d, %d", s.CooldownPeriod, s.InitialCooldownPeriod, s.PollingInterval, tc.cooldown, tc.initial, tc.polling)
			}
			if len(s.Triggers) != 1 || s.Triggers[0].Type != "external-push" || s.Triggers[0].Metadata["interceptorRoute"] != "thumbs" ||
				s.Triggers[0].Metadata["scalerAddress"] != "keda-add-ons-http-external-scaler.keda:9090" {
				t.Errorf("triggers = %+v", s.Triggers)
			}
			if _, ok := objs["HorizontalPodAutoscaler/thumbs"]; ok {
				t.Error("an HPA with scale: KEDA makes its own")
			}
			if _, ok := objs["PodDisruptionBudget/thumbs"]; ok != tc.pdb {
				t.Errorf("PodDisruptionBudget rendered: %t, want %t", ok, tc.pdb)
			}
		})
	}
}

// A workload that depends on a scaled one reaches it through the
// interceptor's port.
func TestDependentOfScaledGoesThroughInterceptor(t *testing.T) {
	doc := `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: thumbs
    kind: function
    lang: go
    port: 9000
    scale: {min: 0}
  - name: front
    kind: service
    lang: go
    dependsOn: [thumbs]
`
	objs := renderAll(t, doc, "front")
	if !strings.Contains(objs["Deployment/front"], "value: \"http://thumbs.shop.svc.cluster.local:8080\"") {
		t.Errorf("front's THUMBS_URL is not the interceptor's port:\n%s", objs["Deployment/front"])
	}
	if _, ok := objs["ScaledObject/front"]; ok {
		t.Error("front, not scaled, has a ScaledObject")
	}
}
