package catalog

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestDiscover(t *testing.T) {
	fsys := fstest.MapFS{
		"go/fn/template.yaml":       {Data: []byte("name: http\nkind: function\nlang: go\ndescription: d\n")},
		"node/svc/template.yaml":    {Data: []byte("name: http\nkind: service\nlang: node\nport: 3000\nprompts: [{name: greeting, message: m, default: hi}]\n")},
		".hidden/x/template.yaml":   {Data: []byte("garbage: [")},
		"a/b/c/d/e/f/template.yaml": {Data: []byte("too deep")},
		"go/fn/main.go.tmpl":        {Data: []byte("package main")},
	}
	ts, err := Discover("r", fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("found %d templates, want 2", len(ts))
	}
	if ts[0].ID() != "r/go/function/http" || ts[1].ID() != "r/node/service/http" {
		t.Errorf("ids = %s, %s", ts[0].ID(), ts[1].ID())
	}
	if ts[0].Port != 8080 || ts[0].Health != "/healthz" || ts[1].Port != 3000 {
		t.Errorf("defaults wrong: %+v %+v", ts[0].Manifest, ts[1].Manifest)
	}
	if got := Filter(ts, Query{Lang: "node"}); len(got) != 1 || got[0].Lang != "node" {
		t.Errorf("Filter = %v", got)
	}
}

func TestDiscoverErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field": {"name: x\nkind: function\nlang: go\nflavour: y\n", "field flavour not found"},
		"bad kind":      {"name: x\nkind: job\nlang: go\n", `kind "job" is not one of function, service`},
		"bad name":      {"name: X\nkind: function\nlang: go\n", "name \"X\" is not a valid name"},
		"empty":         {"", "name is empty"},
		"bad prompt":    {"name: x\nkind: function\nlang: go\nprompts: [{name: a-b}]\n", `prompts[0].name "a-b" must be a Go identifier`},
		"bad default":   {"name: x\nkind: function\nlang: go\nprompts: [{name: a, default: z, choices: [x, y]}]\n", "is not one of its choices"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Discover("r", fstest.MapFS{"t/template.yaml": {Data: []byte(tc.yaml)}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t/template.yaml") {
				t.Fatalf("err = %v, want it to name t/template.yaml and %q", err, tc.want)
			}
		})
	}
	_, err := Discover("r", fstest.MapFS{
		"a/template.yaml": {Data: []byte("name: x\nkind: function\nlang: go\n")},
		"b/template.yaml": {Data: []byte("name: x\nkind: function\nlang: go\n")},
	})
	if err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Fatalf("duplicate: err = %v", err)
	}
}

func TestSplitName(t *testing.T) {
	if r, n := SplitName("team/greeter"); r != "team" || n != "greeter" {
		t.Errorf("SplitName = %q %q", r, n)
	}
	if r, n := SplitName("http"); r != "" || n != "http" {
		t.Errorf("SplitName = %q %q", r, n)
	}
}
