package main

import (
	"slices"
	"testing"
)

func TestSplitRule(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
			[]string{"-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"}},
		{`-N CNI-HOSTPORT-DNAT`, []string{"-N", "CNI-HOSTPORT-DNAT"}},
		{`-A X -m comment --comment "say \"hi\"" -j ACCEPT`,
			[]string{"-A", "X", "-m", "comment", "--comment", `say "hi"`, "-j", "ACCEPT"}},
		{`-A X --comment "" -j Y`, []string{"-A", "X", "--comment", "", "-j", "Y"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitRule(tt.line); !slices.Equal(got, tt.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/var/lib/a\040b`); got != "/var/lib/a b" {
		t.Errorf("got %q", got)
	}
	if got := unescapeMount("/plain"); got != "/plain" {
		t.Errorf("got %q", got)
	}
}

// down stops every component up starts.
func TestDownStopsEveryComponent(t *testing.T) {
	stopped := map[string]bool{}
	for _, group := range downOrder() {
		for _, n := range group {
			stopped[n] = true
		}
	}
	for _, n := range componentNames() {
		if !stopped[n] {
			t.Errorf("down does not stop %s", n)
		}
	}
	if len(stopped) != len(componentNames()) {
		t.Errorf("down stops %d components, up starts %d", len(stopped), len(componentNames()))
	}
}

func TestKubeRouterSets(t *testing.T) {
	for name, want := range map[string]bool{
		"KUBE-SRC-ABCDEF":        true,
		"KUBE-DST-0123":          true,
		"inet6:KUBE-DST-0123":    true,
		"kube-router-local-ips":  true,
		"my-blocklist":           false,
		"inet6:my-blocklist":     false,
		"CNI-not-an-ipset-owner": false,
	} {
		if got := isKubeRouterSet(name); got != want {
			t.Errorf("isKubeRouterSet(%q) = %v", name, got)
		}
	}
}
