package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
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
		if err := setImages(objs, map[string]string{}); err == nil {
			t.Errorf("%s: setImages without images succeeded", e.name)
		}
	}
}
