package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

const manifest = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: orders
    kind: service
    lang: go
    dependsOn: [payments]
    env: {LOG_LEVEL: debug}
    config: {GREETING: hello}
    replicas: 2
  - name: payments
    kind: function
    lang: node
    port: 9090
    autoscale: {min: 2, max: 4}
`

const image = "127.0.0.1:5000/shop/orders@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func renderWorkload(t *testing.T, name string, overrides map[string]any) map[string]string {
	t.Helper()
	p, err := project.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, doc := range strings.Split(renderRelease(t, p, name, "shop", overrides), "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, doc)
		}
		if meta.Kind != "" {
			docs[meta.Kind] = doc
		}
	}
	return docs
}

func TestRenderService(t *testing.T) {
	docs := renderWorkload(t, "orders", nil)
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "ConfigMap", "PodDisruptionBudget"} {
		if _, ok := docs[kind]; !ok {
			t.Errorf("no %s rendered", kind)
		}
	}
	if _, ok := docs["HorizontalPodAutoscaler"]; ok {
		t.Error("an HPA without autoscale")
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(docs["Deployment"]), &d); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != image {
		t.Errorf("image = %q", c.Image)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["PAYMENTS_URL"] != "http://payments.shop.svc.cluster.local:9090" || env["LOG_LEVEL"] != "debug" || env["PORT"] != "8080" {
		t.Errorf("env = %v", env)
	}
	labels := d.Spec.Template.Labels
	if labels["app.kubernetes.io/part-of"] != "shop" || labels["app.kubernetes.io/name"] != "orders" || labels["app.kubernetes.io/instance"] != "shop-orders" {
		t.Errorf("labels = %v", labels)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no config checksum annotation")
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Error("probes not on the health endpoints")
	}
	if c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds < 30 || c.LivenessProbe.FailureThreshold <= c.ReadinessProbe.FailureThreshold {
		t.Errorf("a slow starter would be killed: startup %+v liveness %+v", c.StartupProbe, c.LivenessProbe)
	}
	assertRestricted(t, d.Spec.Template.Spec)
}

// assertRestricted checks the Pod Security Standards "restricted" profile.
func assertRestricted(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context not restricted: %+v", psc)
	}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("container %s security context not restricted: %+v", c.Name, sc)
		}
	}
	tmp := false
	for _, v := range spec.Volumes {
		tmp = tmp || (v.Name == "tmp" && v.EmptyDir != nil)
	}
	if !tmp {
		t.Error("no emptyDir for /tmp")
	}
}

func TestRenderAutoscaledFunction(t *testing.T) {
	docs := renderWorkload(t, "payments", nil)
	if _, ok := docs["HorizontalPodAutoscaler"]; !ok {
		t.Error("no HPA with autoscale")
	}
	if _, ok := docs["PodDisruptionBudget"]; !ok {
		t.Error("no PDB with autoscale.min > 1")
	}
	var d appsv1.Deployment
	yaml.Unmarshal([]byte(docs["Deployment"]), &d)
	if d.Spec.Replicas != nil {
		t.Error("replicas set on an autoscaled Deployment")
	}
}

func TestRenderOverrides(t *testing.T) {
	docs := renderWorkload(t, "orders", map[string]any{"replicas": 1, "env": map[string]any{"EXTRA": "1"}})
	if _, ok := docs["PodDisruptionBudget"]; ok {
		t.Error("PDB with replicas overridden to 1")
	}
	if !strings.Contains(docs["Deployment"], "EXTRA") || !strings.Contains(docs["Deployment"], "LOG_LEVEL") {
		t.Error("overrides did not merge with skiff's values")
	}
}

func TestMergeLeavesItsArgumentsAlone(t *testing.T) {
	overrides := map[string]any{"env": map[string]any{"A": "1"}}
	a := Merge(map[string]any{"workload": "a", "env": map[string]any{"B": "2"}}, overrides)
	b := Merge(map[string]any{"workload": "b"}, overrides)
	if a["workload"] != "a" || b["workload"] != "b" {
		t.Errorf("merged workloads: %v, %v", a["workload"], b["workload"])
	}
	if _, leaked := b["env"].(map[string]any)["B"]; leaked {
		t.Error("values of one merge leaked into the next")
	}
	if len(overrides) != 1 || len(overrides["env"].(map[string]any)) != 1 {
		t.Errorf("Merge changed the overrides: %v", overrides)
	}
}

func TestConfigChangeRollsPods(t *testing.T) {
	a := renderWorkload(t, "orders", nil)["Deployment"]
	b := renderWorkload(t, "orders", map[string]any{"config": map[string]any{"GREETING": "bye"}})["Deployment"]
	sum := func(s string) string {
		i := strings.Index(s, "checksum/config:")
		return s[i : i+60]
	}
	if sum(a) == sum(b) {
		t.Error("a config change kept the checksum annotation")
	}
}

// TestLiveConfig: with liveConfig, a config change leaves the Deployment
// as it was (no rollout), and the pods may get and watch their own
// ConfigMap and nothing else.
func TestLiveConfig(t *testing.T) {
	live := map[string]any{"liveConfig": true}
	a := renderWorkload(t, "orders", live)
	b := renderWorkload(t, "orders", Merge(live, map[string]any{"config": map[string]any{"GREETING": "bye"}}))
	if a["Deployment"] != b["Deployment"] {
		t.Errorf("a config change changed the live workload's Deployment:\n%s\n---\n%s", a["Deployment"], b["Deployment"])
	}
	if a["ConfigMap"] == b["ConfigMap"] {
		t.Error("the ConfigMap did not change")
	}
	var dep struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Spec struct {
					Automount  *bool `json:"automountServiceAccountToken"`
					Containers []struct {
						Env []struct {
							Name  string `json:"name"`
							Value string `json:"value"`
						} `json:"env"`
						VolumeMounts []struct {
							Name      string `json:"name"`
							MountPath string `json:"mountPath"`
						} `json:"volumeMounts"`
					} `json:"containers"`
					Volumes []struct {
						Name      string `json:"name"`
						ConfigMap *struct {
							Name string `json:"name"`
						} `json:"configMap"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(a["Deployment"]), &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	if _, ok := dep.Spec.Template.Metadata.Annotations["checksum/config"]; ok {
		t.Error("the live workload's pods carry checksum/config")
	}
	if pod.Automount == nil || !*pod.Automount {
		t.Error("the live workload's pods get no service account token")
	}
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["SKIFF_CONFIG_MAP"] != "orders-config" || env["SKIFF_CONFIG_FILES"] != "/etc/skiff/config" {
		t.Errorf("env = %v", env)
	}
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == "config" && m.MountPath == "/etc/skiff/config")
	}
	fromConfigMap := false
	for _, v := range pod.Volumes {
		fromConfigMap = fromConfigMap || (v.Name == "config" && v.ConfigMap != nil && v.ConfigMap.Name == "orders-config")
	}
	if !mounted || !fromConfigMap {
		t.Errorf("the ConfigMap is not mounted at /etc/skiff/config: mounts %+v, volumes %+v", pod.Containers[0].VolumeMounts, pod.Volumes)
	}

	var role struct {
		Rules []struct {
			APIGroups     []string `json:"apiGroups"`
			Resources     []string `json:"resources"`
			ResourceNames []string `json:"resourceNames"`
			Verbs         []string `json:"verbs"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal([]byte(a["Role"]), &role); err != nil {
		t.Fatal(err)
	}
	want := `[{APIGroups:[] Resources:[configmaps] ResourceNames:[orders-config] Verbs:[get watch]}]`
	if got := fmt.Sprintf("%+v", role.Rules); got != want {
		t.Errorf("rules = %s, want %s", got, want)
	}
	if !strings.Contains(a["RoleBinding"], "kind: ServiceAccount\n    name: orders\n    namespace: shop") {
		t.Errorf("the RoleBinding does not bind the workload's service account:\n%s", a["RoleBinding"])
	}

	off := renderWorkload(t, "orders", nil)
	if _, ok := off["Role"]; ok {
		t.Error("a workload without liveConfig got a Role")
	}
	if !strings.Contains(off["Deployment"], "automountServiceAccountToken: false") {
		t.Error("a workload without liveConfig gets a service account token")
	}
}

func TestRenderIncludesHooks(t *testing.T) {
	c, err := LoadBase()
	if err != nil {
		t.Fatal(err)
	}
	c.Templates = append(c.Templates, &helmchart.File{Name: "templates/migrate.yaml", Data: []byte(
		"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install\n" +
			"spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: x}]\n")})
	p, _ := project.Parse([]byte(manifest))
	w, _ := p.Workload("orders")
	out, err := Render(context.Background(), c, Values(p, w, "shop", image), "shop-orders", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "# Source: skiff-workload/templates/migrate.yaml") || !strings.Contains(out, "name: migrate") {
		t.Errorf("the hook is missing from the render:\n%s", out)
	}
}

func TestRenderNeedsImage(t *testing.T) {
	p, _ := project.Parse([]byte(manifest))
	w, _ := p.Workload("orders")
	c, _ := LoadBase()
	_, err := Render(context.Background(), c, Values(p, w, "shop", ""), "shop-orders", "shop")
	if err == nil || !strings.Contains(err.Error(), "image.ref is required") {
		t.Fatalf("err = %v", err)
	}
}

// TestBaseChartLints runs Helm's own lint on the base chart with the values
// of a real workload.
func TestBaseChartLints(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBase(dir); err != nil {
		t.Fatal(err)
	}
	p, _ := project.Parse([]byte(manifest))
	for _, name := range []string{"orders", "payments", "orders-live"} {
		w, _ := p.Workload(strings.TrimSuffix(name, "-live"))
		vals := Values(p, w, "shop", image)
		if strings.HasSuffix(name, "-live") {
			vals["liveConfig"] = true
		}
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = "shop"
		res := lint.Run([]string{dir}, vals)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: lint: %s", name, m)
			}
		}
		if len(res.Messages) == 0 {
			t.Errorf("%s: lint reported nothing at all; did it run?", name)
		}
		for _, err := range res.Errors {
			t.Errorf("%s: lint error: %v", name, err)
		}
	}
}

// skiff dev's live updates: the workload runs under skiff-relay
// supervise, from a writable copy of its app folder.
func TestRenderDevSync(t *testing.T) {
	docs := renderWorkload(t, "orders", map[string]any{"dev": map[string]any{"sync": map[string]any{
		"enabled": true, "image": "registry.test/skiff-relay@sha256:1", "command": []any{"/app/orders", "--flag"}}}})
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(docs["Deployment"]), &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 2 || spec.InitContainers[0].Image != "registry.test/skiff-relay@sha256:1" ||
		strings.Join(spec.InitContainers[0].Args, " ") != "install /skiff-dev/bin/skiff-relay" ||
		spec.InitContainers[1].Image != image || strings.Join(spec.InitContainers[1].Command, " ") != "/skiff-dev/bin/skiff-relay copy /app /skiff-dev/app" {
		t.Fatalf("init containers = %+v", spec.InitContainers)
	}
	c := spec.Containers[0]
	want := "/skiff-dev/bin/skiff-relay supervise --admin=127.0.0.1:9092 --ready=http://127.0.0.1:8080/readyz --dir=/app --backup=/skiff-dev/backup --state=/skiff-dev/version --ready-timeout=90s --version=" + image + " -- /app/orders --flag"
	if got := strings.Join(c.Command, " "); got != want {
		t.Errorf("command = %s\nwant      %s", got, want)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["skiff-dev-app"] != "/app" || mounts["skiff-dev"] != "/skiff-dev" {
		t.Errorf("mounts = %v", mounts)
	}
	// The supervisor restarts the process on each sync and waits for it:
	// no liveness probe to restart the container meanwhile.
	if c.LivenessProbe != nil || c.ReadinessProbe == nil {
		t.Errorf("probes under dev.sync: liveness %v, readiness %v", c.LivenessProbe, c.ReadinessProbe)
	}
	assertRestricted(t, spec)

	// Off (deploy, render): the image's own entrypoint, no init containers.
	docs = renderWorkload(t, "orders", nil)
	d = appsv1.Deployment{}
	if err := yaml.UnmarshalStrict([]byte(docs["Deployment"]), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Template.Spec.InitContainers) != 0 || d.Spec.Template.Spec.Containers[0].Command != nil {
		t.Errorf("without dev.sync: init %+v, command %v", d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers[0].Command)
	}

	// With events too: the copy is made before the relay sidecar starts,
	// and the sidecar stays a native one.
	objs := renderAllWith(t, eventsDoc, "thumbs", map[string]any{"dev": map[string]any{"sync": map[string]any{
		"enabled": true, "image": "registry.test/skiff-relay@sha256:1", "command": []any{"/app/thumbs"}}}})
	d = appsv1.Deployment{}
	if err := yaml.UnmarshalStrict([]byte(objs["Deployment/thumbs"]), &d); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range d.Spec.Template.Spec.InitContainers {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "skiff-dev-install skiff-dev-copy skiff-relay" {
		t.Errorf("init containers with events and dev.sync: %s", got)
	}
	assertRestricted(t, d.Spec.Template.Spec)
}
