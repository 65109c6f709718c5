package project

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const valid = `apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/acme
workloads:
  - name: orders
    kind: service
    lang: go
    dependsOn: [payments]
    replicas: 2
    autoscale: {min: 1, max: 5}
  - name: payments
    kind: function
    lang: python
    template: cloudevents
    port: 9090
    env: {LOG_LEVEL: debug}
`

func TestParseDefaults(t *testing.T) {
	p, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if p.Namespace != "shop" {
		t.Errorf("namespace = %q, want the project name", p.Namespace)
	}
	o := p.Workloads[0]
	if o.Template != "http" || o.Path != "orders" || o.Port != 8080 || *o.Replicas != 2 || o.Health != "/healthz" {
		t.Errorf("orders defaults wrong: %+v", o)
	}
	if o.Autoscale.CPUPercent != 80 {
		t.Errorf("autoscale.cpuPercent = %d, want 80", o.Autoscale.CPUPercent)
	}
	pay := p.Workloads[1]
	if pay.Port != 9090 || *pay.Replicas != 1 || pay.Env["LOG_LEVEL"] != "debug" {
		t.Errorf("payments wrong: %+v", pay)
	}
	order := p.Order()
	if order[0].Name != "payments" || order[1].Name != "orders" {
		t.Errorf("Order() = %v, want payments before orders", []string{order[0].Name, order[1].Name})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "name: [", []string{"not valid YAML"}},
		{"scalar", "hello", []string{"must be a mapping"}},
		{"no version", "name: a\nworkloads: []", []string{"apiVersion is missing", "add `apiVersion: skiff.dev/v1alpha1`"}},
		{"future version", "apiVersion: skiff.dev/v9\nname: a", []string{`"skiff.dev/v9" is not a version`}},
		{"unknown field", "apiVersion: skiff.dev/v1alpha1\nname: a\nworklods: []", []string{"line 3", "worklods"}},
		{"bad name", "apiVersion: skiff.dev/v1alpha1\nname: My_Shop\nworkloads: [{name: a, kind: service, lang: go}]",
			[]string{"line 2", `name "My_Shop" is not a valid name`, "DNS-1123"}},
		{"no workloads", "apiVersion: skiff.dev/v1alpha1\nname: a\n", []string{"workloads is empty", "skiff add"}},
		{"duplicate", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go}\n- {name: x, kind: service, lang: go, path: y}",
			[]string{"line 5", `workloads[1].name "x" is used by workloads[0] too`}},
		{"bad lang", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: rust}",
			[]string{`workloads[0].lang "rust" is not known`, "go, node, python, typescript"}},
		{"missing kind", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, lang: go}",
			[]string{"workloads[0].kind is missing", "function, service"}},
		{"port", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- name: x\n  kind: service\n  lang: go\n  port: 70000",
			[]string{"line 7", "workloads[0].port 70000 is out of range", "1 to 65535"}},
		{"escaping path", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, path: ../x}",
			[]string{`workloads[0].path "../x" leaves the project folder`}},
		{"missing dep", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, dependsOn: [y]}",
			[]string{`workloads[0].dependsOn[0] "y" is not a workload of this project`}},
		{"cycle", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, dependsOn: [y]}\n- {name: y, kind: service, lang: go, dependsOn: [z]}\n- {name: z, kind: service, lang: go, dependsOn: [x]}",
			[]string{"forms a cycle: x -> y -> z -> x"}},
		{"autoscale", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, autoscale: {min: 3, max: 2}}",
			[]string{"autoscale.max 2 is less than autoscale.min (3)"}},
		{"env key", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, env: {1BAD: v}}",
			[]string{"env.1BAD is not a valid environment variable name"}},
		{"digit first", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: 1api, kind: service, lang: go}",
			[]string{`workloads[0].name "1api" starts with a digit`, "Service"}},
		{"release too long", "apiVersion: skiff.dev/v1alpha1\nname: a-rather-long-project-name\nworkloads:\n- {name: and-a-rather-long-workload-name, kind: service, lang: go}",
			[]string{"release name a-rather-long-project-name-and-a-rather-long-workload-name 58 characters long, more than Helm's 53"}},
		{"two problems", "apiVersion: skiff.dev/v1alpha1\nname: A\nworkloads:\n- {name: x, kind: job, lang: go}",
			[]string{"2 problems", "name \"A\"", "kind \"job\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	os.WriteFile(path, []byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n- {name: x, kind: service, lang: go, port: 0}\n- {name: y, kind: service, lang: go, port: -1}\n"), 0o644)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":5: workloads[1].port -1 is out of range") {
		t.Fatalf("error = %v, want it to name file and line", err)
	}
	if _, err := Load(filepath.Join(dir, "nope.yaml")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: error = %v, want ErrNotFound", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(valid), 0o644)
	sub := filepath.Join(dir, "orders", "cmd")
	os.MkdirAll(sub, 0o755)
	got, err := Find(sub)
	if err != nil || got != filepath.Join(dir, FileName) {
		t.Fatalf("Find = %q, %v", got, err)
	}
	if _, err := Find(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find in empty dir: %v, want ErrNotFound", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	p, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "template: http") || strings.Contains(string(data), "namespace:") {
		t.Errorf("defaults were written out:\n%s", data)
	}
	q, err := Parse(data)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, data)
	}
	if q.Workloads[1].Template != "cloudevents" || q.Workloads[0].Autoscale.Max != 5 {
		t.Errorf("round trip lost data:\n%s", data)
	}
}

func TestAddWorkloadKeepsComments(t *testing.T) {
	src := "# my shop\napiVersion: skiff.dev/v1alpha1\nname: shop # the project\nworkloads:\n  - name: orders # first\n    kind: service\n    lang: go\n"
	data, err := AddWorkload([]byte(src), Workload{Name: "pay", Kind: "function", Lang: "node", Template: "http"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# my shop", "# the project", "# first", "name: pay"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("result lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "template: http") {
		t.Errorf("default template written out:\n%s", data)
	}
	p, err := Parse(data)
	if err != nil || len(p.Workloads) != 2 {
		t.Fatalf("Parse after add: %v", err)
	}
	if _, err := AddWorkload(data, Workload{Name: "pay", Kind: "function", Lang: "node", Path: "pay2"}); err == nil ||
		!strings.Contains(err.Error(), `"pay" is used by workloads[1] too`) {
		t.Fatalf("duplicate: error = %v", err)
	}
	if _, err := AddWorkload([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n"), Workload{Name: "x", Kind: "service", Lang: "go"}); err != nil {
		t.Fatalf("empty workloads: %v", err)
	}
}

func TestSetConfigKeepsComments(t *testing.T) {
	src := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - name: orders # first\n    kind: service\n    lang: go\n    config:\n      LOG_LEVEL: info # debug when tracing\n      OLD: x\n"
	data, err := SetConfig([]byte(src), "orders", map[string]string{"LOG_LEVEL": "debug", "NEW": "1"}, []string{"OLD"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LOG_LEVEL: debug # debug when tracing", "# first", `NEW: "1"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("result lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "OLD") {
		t.Errorf("OLD was not removed:\n%s", data)
	}
	if _, err := SetConfig([]byte(src), "nope", map[string]string{"A": "1"}, nil); err == nil {
		t.Error("SetConfig of a missing workload succeeded")
	}
}

func TestFreePort(t *testing.T) {
	p := &Project{Workloads: []Workload{{Name: "a"}, {Name: "b", Port: 8081}, {Name: "c", Port: 9000}}}
	for want, got := range map[int]int{8080: 8082, 8081: 8082, 9000: 9001, 7000: 7000, 0: 8082} {
		if g := p.FreePort(want); g != got {
			t.Errorf("FreePort(%d) = %d, want %d", want, g, got)
		}
	}
}
