package project

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const scaled = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: thumbs
    kind: function
    lang: go
    scale: {min: 0, max: 5, idle: 2m, concurrency: 20}
  - name: front
    kind: service
    lang: go
    dependsOn: [thumbs]
    autoscale: {min: 1, max: 3}
environments:
  prod:
    workloads:
      thumbs: {scale: {min: 2}}
      front: {scale: {min: 0, rps: 50}}
  dev:
    workloads:
      thumbs: {autoscale: {min: 1, max: 2}}
`

func TestScaleDefaultsAndEnvironments(t *testing.T) {
	p, err := Parse([]byte(scaled))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Workloads[0].Scale
	if s.Min != 0 || s.Max != 5 || s.IdleDuration() != 2*time.Minute || s.Concurrency != 20 || s.RPS != 0 {
		t.Errorf("thumbs scale = %+v", s)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", p.Warnings)
	}

	prod, err := p.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	// An environment's scale replaces the workload's whole scale, defaulted.
	if s := prod.Workloads[0].Scale; s.Min != 2 || s.Max != DefaultScaleMax || s.Idle != DefaultScaleIdle || s.Concurrency != DefaultScaleConcurrency {
		t.Errorf("prod thumbs scale = %+v", s)
	}
	// ...and drops autoscale: the two decide the same thing.
	if f := prod.Workloads[1]; f.Autoscale != nil || f.Scale == nil || f.Scale.RPS != 50 || f.Scale.Concurrency != 0 {
		t.Errorf("prod front = autoscale %+v scale %+v, want only scale with rps 50", f.Autoscale, f.Scale)
	}
	dev, err := p.ForEnv("dev")
	if err != nil {
		t.Fatal(err)
	}
	if th := dev.Workloads[0]; th.Scale != nil || th.Autoscale == nil {
		t.Errorf("dev thumbs = autoscale %+v scale %+v, want only autoscale", th.Autoscale, th.Scale)
	}
	// The top level is untouched by either.
	if p.Workloads[0].Scale.Min != 0 || p.Workloads[1].Scale != nil {
		t.Error("ForEnv changed the top-level project")
	}
}

func TestScaleErrors(t *testing.T) {
	tests := []struct {
		name, scale string
		line        int
		want        string
	}{
		{"negative min", "{min: -1}", 7, "workloads[0].scale.min -1 is negative"},
		{"max below min", "{min: 4, max: 2}", 7, "workloads[0].scale.max 2 is less than scale.min (4)"},
		{"bad idle", "{idle: soon}", 7, `workloads[0].scale.idle "soon" is not a duration`},
		{"sub-second idle", "{idle: 1500ms}", 7, "whole number of seconds"},
		{"negative rps", "{rps: -3}", 7, "workloads[0].scale.rps -3 is negative"},
		{"with autoscale", "{min: 0}\n    autoscale: {min: 1, max: 2}", 7, "workloads[0].scale and autoscale are both set; choose one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - name: thumbs\n    kind: function\n    lang: go\n    scale: " + tc.scale + "\n"
			_, err := Parse([]byte(doc))
			var verrs ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("err = %v, want validation errors", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if verrs[0].Line != tc.line {
				t.Errorf("line = %d, want %d", verrs[0].Line, tc.line)
			}
		})
	}
}

func TestScaleEnvironmentErrors(t *testing.T) {
	doc := `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: thumbs
    kind: function
    lang: go
  - name: thumbs-pods
    kind: service
    lang: go
environments:
  prod:
    workloads:
      thumbs:
        scale: {min: 3, max: 1}
        autoscale: {min: 1, max: 2}
`
	_, err := Parse([]byte(doc))
	var verrs ValidationErrors
	if !errors.As(err, &verrs) {
		t.Fatalf("err = %v, want validation errors", err)
	}
	want := map[string]int{
		"environments.prod.workloads.thumbs.scale":     14,
		"environments.prod.workloads.thumbs.scale.max": 14,
		"workloads[1].name":                            7,
	}
	got := map[string]int{}
	for _, e := range verrs {
		got[e.Path] = e.Line
	}
	for path, line := range want {
		if l, ok := got[path]; !ok || l != line {
			t.Errorf("%s: line %d (found %t), want %d; all: %v", path, l, ok, line, err)
		}
	}
	if !strings.Contains(err.Error(), `"thumbs-pods" is the name of the pods' Service of the scaled workload thumbs`) {
		t.Errorf("err = %v, want the name collision named", err)
	}
}

func TestReplicasWithScaleWarns(t *testing.T) {
	doc := `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: thumbs
    kind: function
    lang: go
    replicas: 3
    scale: {min: 0}
environments:
  prod:
    workloads:
      thumbs: {replicas: 2}
`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 2 {
		t.Fatalf("warnings = %v, want 2", p.Warnings)
	}
	if w := p.Warnings[0]; w.Path != "workloads[0].replicas" || w.Line != 7 || !strings.Contains(w.Error(), "is ignored: scale lets KEDA set the number of pods") {
		t.Errorf("first warning = %v (line %d)", w, w.Line)
	}
	if w := p.Warnings[1]; w.Path != "environments.prod.workloads.thumbs.replicas" || w.Line != 12 {
		t.Errorf("second warning = %v (line %d)", w, w.Line)
	}
}
