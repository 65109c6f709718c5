package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kedaNamespace is where KEDA's and the add-on's own manifests put them.
const kedaNamespace = "keda"

// engine is one of the serverless engines the cluster installs: a Go
// module whose config/ folder (kustomize) is applied as its users apply it,
// with the images swapped for ones built here.
type engine struct {
	name    string            // for messages
	tools   string            // the tools module that pins it
	module  string            // its module path
	kustom  string            // the kustomization under the module dir
	images  map[string]string // container name -> image ref
	env     []containerEnv    // settings beyond the manifests' own
	deploys []string          // Deployments that must become available
}

// containerEnv is one environment variable of a Deployment's container.
type containerEnv struct{ deployment, container, name, value string }

// wakeEnv are the KEDA HTTP add-on's settings that shorten a wake from
// zero, as docs/serverless.md recommends them (skiff doctor checks them):
// the scaler asks the interceptors for the requests they hold every 100 ms
// instead of every 500 ms, so KEDA hears of the first request 0.2 s sooner
// on average, for ten small GETs a second per interceptor pod. The
// interceptor gives up a connection attempt to a woken pod after 100 ms
// instead of 500 ms, and tries again: its first attempts reach the pods'
// Service before kube-proxy has programmed it, and once the kernel rate-
// limits the ICMP that refuses them, an attempt waits out the whole
// timeout. The scaler's push interval to KEDA stays at its 200 ms: KEDA
// patches an active ScaledObject's status on every push.
var wakeEnv = []containerEnv{
	{"keda-add-ons-http-scaler", "scaler", "KEDA_HTTP_QUEUE_TICK_DURATION", "100ms"},
	{"keda-add-ons-http-interceptor", "interceptor", "KEDA_HTTP_CONNECT_TIMEOUT", "100ms"},
}

// installEngines pushes the images of KEDA and its HTTP add-on, applies
// their CRDs, RBAC and Deployments from the modules' config/ folders, and
// waits until they run and the external metrics API answers.
func (c *cluster) installEngines(ctx context.Context, kb kedaBinaries, kubelet *procRecord) error {
	begin := time.Now()
	img := func(name, version string) string {
		return registryAddr + "/skiff-cluster/" + name + ":" + version
	}
	pushes := []binaryImage{
		{Ref: img("keda", kedaVersion), Binary: kb.operator, User: "65532"},
		{Ref: img("keda-metrics-apiserver", kedaVersion), Binary: kb.adapter, User: "65532"},
		{Ref: img("keda-http-interceptor", httpAddonVersion), Binary: kb.interceptor, User: "65532"},
		{Ref: img("keda-http-scaler", httpAddonVersion), Binary: kb.scaler, User: "65532"},
		{Ref: img("keda-http-operator", httpAddonVersion), Binary: kb.addonOperator, User: "65532"},
	}
	for _, bi := range pushes {
		if err := pushImage(ctx, bi); err != nil {
			return err
		}
	}
	engines := serverlessEngines(pushes[0].Ref, pushes[1].Ref, pushes[2].Ref, pushes[3].Ref, pushes[4].Ref)

	dyn, cs, mapper, err := c.applyClients()
	if err != nil {
		return err
	}

	var objs []*unstructured.Unstructured
	for _, e := range engines {
		dir, err := c.moduleDir(ctx, e.tools, e.module)
		if err != nil {
			return err
		}
		rendered, err := renderKustomization(filepath.Join(dir, e.kustom))
		if err != nil {
			return fmt.Errorf("rendering %s from %s: %w", e.name, filepath.Join(dir, e.kustom), err)
		}
		if err := setImages(rendered, e.images); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if err := setEnv(rendered, e.env); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		objs = append(objs, rendered...)
	}

	// CRDs and namespaces first: everything else depends on them.
	first := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace"
	}
	var crds []string
	for _, o := range objs {
		if !first(o) {
			continue
		}
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
		}
	}
	if err := c.waitFor(ctx, "the engines' CRDs to be established", nil, 60*time.Second, func(ctx context.Context) error {
		return crdsEstablished(ctx, dyn, crds)
	}); err != nil {
		return err
	}
	mapper.Reset()
	for _, o := range objs {
		if first(o) {
			continue
		}
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
	}

	var deploys []string
	for _, e := range engines {
		deploys = append(deploys, e.deploys...)
	}
	// KEDA's operator makes its certificates on first start and restarts
	// once to load them; its probes start after 20 s.
	if err := c.waitFor(ctx, "KEDA and the HTTP add-on to be available", kubelet, 240*time.Second, func(ctx context.Context) error {
		if err := deploymentsAvailable(ctx, cs, kedaNamespace, deploys); err != nil {
			return err
		}
		return apiServiceAvailable(ctx, dyn, "v1beta1.external.metrics.k8s.io")
	}); err != nil {
		return fmt.Errorf("%w\npods in %s:\n%s", err, kedaNamespace, podReport(ctx, cs, kedaNamespace))
	}
	c.logf("installed KEDA %s and its HTTP add-on %s in %s", kedaVersion, httpAddonVersion, time.Since(begin).Round(time.Second))
	return nil
}

// serverlessEngines are KEDA and its HTTP add-on, with the images of
// their containers.
func serverlessEngines(operator, adapter, interceptor, scaler, addonOperator string) []engine {
	return []engine{
		{
			name: "KEDA " + kedaVersion, tools: "tools/keda", module: "github.com/kedacore/keda/v2", kustom: "config/minimal",
			images: map[string]string{
				"keda-operator":          operator,
				"keda-metrics-apiserver": adapter,
			},
			deploys: []string{"keda-operator", "keda-metrics-apiserver"},
		},
		{
			name: "the KEDA HTTP add-on " + httpAddonVersion, tools: "tools/httpaddon", module: "github.com/kedacore/http-add-on", kustom: "config/default",
			images: map[string]string{
				"interceptor": interceptor,
				"scaler":      scaler,
				"operator":    addonOperator,
			},
			env:     wakeEnv,
			deploys: []string{"keda-add-ons-http-interceptor", "keda-add-ons-http-scaler", "keda-add-ons-http-operator"},
		},
	}
}

// moduleDir returns where the Go module cache holds the version of module
// that the tools module pins, downloading it if needed.
func (c *cluster) moduleDir(ctx context.Context, tools, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join(c.cfg.SrcDir, tools)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s in %s: %w\n%s", module, cmd.Dir, err, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, nil
}

// renderKustomization runs kustomize on dir, as `kubectl apply -k` would.
func renderKustomization(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	data, err := resMap.AsYaml()
	if err != nil {
		return nil, err
	}
	return decodeObjects(data)
}

// setImages points every Deployment container at the image built here. A
// container this harness has no image for is an error: the install would
// otherwise try to pull from a registry the machine cannot reach.
func setImages(objs []*unstructured.Unstructured, images map[string]string) error {
	used := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if err != nil {
			return err
		}
		for i, item := range containers {
			ctr, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("deployment %s: container %d is not an object", o.GetName(), i)
			}
			name, _ := ctr["name"].(string)
			ref, ok := images[name]
			if !ok {
				return fmt.Errorf("deployment %s: no image built for container %q", o.GetName(), name)
			}
			ctr["image"] = ref
			used[name] = true
		}
		if err := unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			return err
		}
	}
	for name := range images {
		if !used[name] {
			return fmt.Errorf("the manifests have no container %q", name)
		}
	}
	return nil
}

// setEnv sets each of env on its Deployment's container, replacing a
// value the manifests give. A Deployment or container the manifests lack
// is an error: the setting would silently not apply.
func setEnv(objs []*unstructured.Unstructured, env []containerEnv) error {
	for _, e := range env {
		found := false
		for _, o := range objs {
			if o.GetKind() != "Deployment" || o.GetName() != e.deployment {
				continue
			}
			containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if err != nil {
				return err
			}
			for _, item := range containers {
				ctr, ok := item.(map[string]any)
				if !ok || ctr["name"] != e.container {
					continue
				}
				vars, _ := ctr["env"].([]any)
				vars = slices.DeleteFunc(vars, func(v any) bool {
					m, _ := v.(map[string]any)
					return m["name"] == e.name
				})
				ctr["env"] = append(vars, map[string]any{"name": e.name, "value": e.value})
				found = true
			}
			if err := unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers"); err != nil {
				return err
			}
		}
		if !found {
			return fmt.Errorf("the manifests have no container %q in Deployment %s for %s", e.container, e.deployment, e.name)
		}
	}
	return nil
}

// apply server-side applies one object, as its only manager.
func apply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	force := true
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "skiff-cluster", Force: &force}); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, o.GetName(), err)
	}
	return nil
}

var (
	crdResource        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
)

func crdsEstablished(ctx context.Context, dyn dynamic.Interface, names []string) error {
	for _, n := range names {
		crd, err := dyn.Resource(crdResource).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !conditionTrue(crd, "Established") {
			return fmt.Errorf("CRD %s is not established yet", n)
		}
	}
	return nil
}

func apiServiceAvailable(ctx context.Context, dyn dynamic.Interface, name string) error {
	svc, err := dyn.Resource(apiServiceResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !conditionTrue(svc, "Available") {
		return fmt.Errorf("APIService %s is not available yet", name)
	}
	return nil
}

// conditionTrue reports whether o's status has the condition with status True.
func conditionTrue(o *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return m["status"] == "True"
		}
	}
	return false
}

func deploymentsAvailable(ctx context.Context, cs kubernetes.Interface, ns string, names []string) error {
	var waiting []string
	for _, n := range names {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			waiting = append(waiting, n+" (not created)")
			continue
		}
		if err != nil {
			return err
		}
		if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < 1 || d.Status.UpdatedReplicas < d.Status.Replicas {
			waiting = append(waiting, n)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("deployments not available yet: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// podReport says, per pod of ns, its phase and why each container is not
// ready, for an install that timed out.
func podReport(ctx context.Context, cs kubernetes.Interface, ns string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "  (listing pods: " + err.Error() + ")"
	}
	var lines []string
	for _, p := range pods.Items {
		line := fmt.Sprintf("  %s: %s", p.Name, p.Status.Phase)
		for _, st := range p.Status.ContainerStatuses {
			line += fmt.Sprintf("; %s ready=%t restarts=%d%s", st.Name, st.Ready, st.RestartCount, containerWhy(st))
		}
		lines = append(lines, line)
		for _, st := range p.Status.ContainerStatuses {
			if st.RestartCount == 0 && st.Ready {
				continue
			}
			tail := int64(15)
			logs, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: st.Name, TailLines: &tail}).DoRaw(ctx)
			if err == nil && len(logs) > 0 {
				lines = append(lines, "    "+strings.ReplaceAll(strings.TrimSpace(string(logs)), "\n", "\n    "))
			}
		}
	}
	if len(lines) == 0 {
		return "  (none)"
	}
	return strings.Join(lines, "\n")
}

func containerWhy(st corev1.ContainerStatus) string {
	switch {
	case st.State.Waiting != nil:
		return fmt.Sprintf(" waiting: %s %s", st.State.Waiting.Reason, st.State.Waiting.Message)
	case st.LastTerminationState.Terminated != nil:
		t := st.LastTerminationState.Terminated
		return fmt.Sprintf(" last exit %d (%s)", t.ExitCode, t.Reason)
	}
	return ""
}
