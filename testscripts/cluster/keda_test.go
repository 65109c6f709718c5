package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
)

// The engines' own kustomizations render, and every Deployment container
// gets an image built here.
func TestRenderEngines(t *testing.T) {
	c := newCluster(defaultConfig(), io.Discard, io.Discard)
	for _, tc := range []struct {
		tools, module, kustom string
		images                map[string]string
		kinds                 []string
	}{
		{"tools/keda", "github.com/kedacore/keda/v2", "config/minimal",
			map[string]string{"keda-operator": "a", "keda-metrics-apiserver": "b"},
			[]string{"CustomResourceDefinition", "APIService", "Deployment", "Namespace"}},
		{"tools/httpaddon", "github.com/kedacore/http-add-on", "config/default",
			map[string]string{"interceptor": "c", "scaler": "d", "operator": "e"},
			[]string{"CustomResourceDefinition", "ScaledObject", "Deployment", "Service"}},
	} {
		dir, err := c.moduleDir(context.Background(), tc.tools, tc.module)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := renderKustomization(filepath.Join(dir, tc.kustom))
		if err != nil {
			t.Fatal(err)
		}
		if err := setImages(objs, tc.images); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, o := range objs {
			kinds[o.GetKind()] = true
		}
		for _, k := range tc.kinds {
			if !kinds[k] {
				t.Errorf("%s: no %s in %v", tc.kustom, k, kinds)
			}
		}
		if err := setImages(objs, map[string]string{}); err == nil {
			t.Errorf("%s: setImages without images succeeded", tc.module)
		}
	}
}
