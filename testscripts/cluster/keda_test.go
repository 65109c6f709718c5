package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The engines' own kustomizations render; every Deployment container gets
// an image built here; the Deployments install waits for are there.
func TestRenderEngines(t *testing.T) {
	c := newCluster(defaultConfig(), io.Discard, io.Discard)
	kinds := map[string][]string{
		"tools/keda":      {"CustomResourceDefinition", "APIService", "Deployment", "Namespace", "ServiceAccount"},
		"tools/httpaddon": {"CustomResourceDefinition", "ScaledObject", "Deployment", "Service"},
	}
	for _, e := range serverlessEngines("a", "b", "c", "d", "e") {
		dir, err := c.moduleDir(context.Background(), e.tools, e.module)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := renderKustomization(filepath.Join(dir, e.kustom))
		if err != nil {
			t.Fatal(err)
		}
		if err := setImages(objs, e.images); err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		var deploys []string
		for _, o := range objs {
			found[o.GetKind()] = true
			if o.GetKind() == "Deployment" {
				deploys = append(deploys, o.GetName())
				if o.GetNamespace() != kedaNamespace {
					t.Errorf("%s: deployment %s in namespace %q", e.name, o.GetName(), o.GetNamespace())
				}
			}
		}
		for _, k := range kinds[e.tools] {
			if !found[k] {
				t.Errorf("%s: no %s in %v", e.name, k, found)
			}
		}
		for _, d := range e.deploys {
			if !slices.Contains(deploys, d) {
				t.Errorf("%s: install waits for deployment %s, which the manifests do not have (they have %v)", e.name, d, deploys)
			}
		}
		if err := setEnv(objs, e.env); err != nil {
			t.Fatal(err)
		}
		for _, want := range e.env {
			if got := containerEnvOf(objs, want.deployment, want.container)[want.name]; got != want.value {
				t.Errorf("%s: %s of %s/%s = %q, want %q", e.name, want.name, want.deployment, want.container, got, want.value)
			}
		}
		if err := setEnv(objs, []containerEnv{{"keda-add-ons-http-scaler", "no-such-container", "X", "1"}}); err == nil {
			t.Errorf("%s: setEnv of a container the manifests lack succeeded", e.name)
		}
		if err := setImages(objs, map[string]string{}); err == nil {
			t.Errorf("%s: setImages without images succeeded", e.name)
		}
	}
}

// containerEnvOf is the environment the manifests give a Deployment's container.
func containerEnvOf(objs []*unstructured.Unstructured, deployment, container string) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != deployment {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, item := range containers {
			ctr, _ := item.(map[string]any)
			if ctr["name"] != container {
				continue
			}
			vars, _ := ctr["env"].([]any)
			for _, v := range vars {
				m, _ := v.(map[string]any)
				name, _ := m["name"].(string)
				value, _ := m["value"].(string)
				out[name] = value
			}
		}
	}
	return out
}
