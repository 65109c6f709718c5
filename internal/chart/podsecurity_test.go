package chart

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

// features are what changes the base chart's pod templates.
var features = []string{"scale", "events", "schedule", "liveConfig", "devSync", "expose", "pullSecret"}

// combination renders one workload with the features whose bit is set in
// mask and returns every pod template the release holds, by "Kind/name".
func combination(t *testing.T, mask int) map[string]corev1.PodTemplateSpec {
	t.Helper()
	on := func(f string) bool {
		for i, name := range features {
			if name == f {
				return mask&(1<<i) != 0
			}
		}
		panic(f)
	}
	var w strings.Builder
	w.WriteString("  - name: fn\n    kind: function\n    lang: go\n")
	if on("scale") {
		w.WriteString("    scale: {min: 0}\n")
	} else {
		w.WriteString("    autoscale: {min: 1, max: 3}\n")
	}
	var triggers []string
	if on("events") {
		triggers = append(triggers, "{event: order.created}")
	}
	if on("schedule") {
		triggers = append(triggers, `{schedule: "*/5 * * * *"}`)
	}
	if len(triggers) > 0 {
		w.WriteString("    triggers: [" + strings.Join(triggers, ", ") + "]\n")
	}
	if on("liveConfig") {
		w.WriteString("    liveConfig: true\n    config: {A: b}\n")
	}
	if on("expose") {
		w.WriteString("    expose: true\n")
	}
	doc := "apiVersion: skiff.dev/v1alpha1\nname: shop\ndomain: example.com\ngateway: {name: edge, namespace: infra}\n" +
		"events: {bus: nats://nats.nats:4222, relayImage: \"127.0.0.1:5000/relay@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n"
	if on("pullSecret") {
		doc += "registry: 127.0.0.1:5000/shop\nregistryAuth: pull-secret\n"
	}
	doc += "workloads:\n" + w.String()
	p, err := project.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	var overrides map[string]any
	if on("devSync") {
		overrides = map[string]any{"dev": map[string]any{"sync": map[string]any{
			"enabled": true, "image": "registry.test/skiff-relay@sha256:1", "command": []any{"/app/fn"}}}}
	}
	pods := map[string]corev1.PodTemplateSpec{}
	for key, d := range splitObjects(t, renderRelease(t, p, "fn", "shop", overrides)) {
		switch {
		case strings.HasPrefix(key, "Deployment/"):
			var o appsv1.Deployment
			mustDecode(t, d, &o)
			pods[key] = o.Spec.Template
		case strings.HasPrefix(key, "CronJob/"):
			var o batchv1.CronJob
			mustDecode(t, d, &o)
			pods[key] = o.Spec.JobTemplate.Spec.Template
		case strings.HasPrefix(key, "Job/"):
			var o batchv1.Job
			mustDecode(t, d, &o)
			pods[key] = o.Spec.Template
		case strings.HasPrefix(key, "Pod/"):
			var o corev1.Pod
			mustDecode(t, d, &o)
			pods[key] = corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}
		case strings.HasPrefix(key, "StatefulSet/"), strings.HasPrefix(key, "DaemonSet/"), strings.HasPrefix(key, "ReplicaSet/"):
			t.Fatalf("%s: a pod template this test does not read; add it", key)
		}
	}
	if on("schedule") && len(pods) < 2 {
		t.Fatalf("%s: no CronJob rendered: %v", describe(mask), pods)
	}
	return pods
}

func mustDecode(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
}

func describe(mask int) string {
	var on []string
	for i, f := range features {
		if mask&(1<<i) != 0 {
			on = append(on, f)
		}
	}
	if len(on) == 0 {
		return "plain"
	}
	return strings.Join(on, "+")
}

// restricted evaluates a pod against the Pod Security Standards'
// restricted profile, latest version, with the API server's own checks
// (k8s.io/pod-security-admission/policy): "" when it is allowed.
func restricted(t *testing.T, pod corev1.PodTemplateSpec) string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return ""
	}
	return res.ForbiddenReason() + ": " + res.ForbiddenDetail()
}

// TestPodsAreRestricted renders the base chart with every combination of
// the features that shape its pods and checks every pod template against
// the restricted profile, and skiff's own rules beyond it: no
// service-account token except for live config, a read-only root
// filesystem in every container.
func TestPodsAreRestricted(t *testing.T) {
	seen := map[string]bool{}
	for mask := 0; mask < 1<<len(features); mask++ {
		name := describe(mask)
		for key, pod := range combination(t, mask) {
			seen[strings.SplitN(key, "/", 2)[0]] = true
			if why := restricted(t, pod); why != "" {
				t.Errorf("%s, %s: not restricted: %s", name, key, why)
			}
			token := pod.Spec.AutomountServiceAccountToken
			wantToken := strings.HasPrefix(key, "Deployment/") && strings.Contains(name, "liveConfig")
			if token == nil || *token != wantToken {
				t.Errorf("%s, %s: automountServiceAccountToken = %v; want %v", name, key, ptrString(token), wantToken)
			}
			all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
			for _, c := range all {
				if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s, %s: container %s has a writable root filesystem", name, key, c.Name)
				}
			}
		}
	}
	for _, kind := range []string{"Deployment", "CronJob"} {
		if !seen[kind] {
			t.Errorf("no combination rendered a %s", kind)
		}
	}
}

// TestRestrictedCheckerRefuses shows the checker above is not a rubber
// stamp: the same pods, each loosened in one way the profile forbids.
func TestRestrictedCheckerRefuses(t *testing.T) {
	pods := combination(t, (1<<len(features))-1)
	base := pods["Deployment/fn"]
	if why := restricted(t, base); why != "" {
		t.Fatalf("the base pod is refused: %s", why)
	}
	yes := true
	for name, loosen := range map[string]func(*corev1.PodSpec){
		"root allowed": func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot = nil
			s.InitContainers[0].SecurityContext.RunAsNonRoot = nil
			s.SecurityContext.RunAsUser = nil
		},
		"escalation allowed": func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes },
		"capability kept":    func(s *corev1.PodSpec) { s.InitContainers[1].SecurityContext.Capabilities.Drop = nil },
		"seccomp unconfined": func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		},
		"host network": func(s *corev1.PodSpec) { s.HostNetwork = true },
		"privileged sidecar": func(s *corev1.PodSpec) {
			last := len(s.InitContainers) - 1
			s.InitContainers[last].SecurityContext.Privileged = &yes
		},
	} {
		pod := *base.DeepCopy()
		loosen(&pod.Spec)
		if restricted(t, pod) == "" {
			t.Errorf("%s: the checker allowed it", name)
		}
	}
}

func ptrString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
