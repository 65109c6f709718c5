package project

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const networked = `apiVersion: skiff.dev/v1alpha1
name: shop
events: {bus: nats://nats.nats.svc.cluster.local:4222}
network:
  allowFrom:
    - namespace: monitoring
    - pods: {app.kubernetes.io/name: prometheus}
      ports: [9091]
workloads:
  - name: orders
    kind: service
    lang: go
    dependsOn: [payments]
  - name: payments
    kind: service
    lang: go
  - name: audit
    kind: service
    lang: go
    dependsOn: [payments]
environments:
  dev:
    network: {policy: off}
  locked:
    network:
      egress:
        - cidr: 203.0.113.0/24
          ports: [443]
`

func TestNetwork(t *testing.T) {
	p, err := Parse([]byte(networked))
	if err != nil {
		t.Fatal(err)
	}
	if !p.NetworkPolicy() || p.EgressLimited() {
		t.Errorf("top level: policy %v, egress limited %v; want on, open", p.NetworkPolicy(), p.EgressLimited())
	}
	if got := strings.Join(p.Dependents("payments"), ","); got != "orders,audit" {
		t.Errorf("dependents of payments = %q", got)
	}
	if got := p.Dependents("orders"); len(got) != 0 {
		t.Errorf("dependents of orders = %q", got)
	}
	dev, err := p.ForEnv("dev")
	if err != nil {
		t.Fatal(err)
	}
	if dev.NetworkPolicy() {
		t.Error("dev: policy off is not honoured")
	}
	locked, err := p.ForEnv("locked")
	if err != nil {
		t.Fatal(err)
	}
	if !locked.NetworkPolicy() || !locked.EgressLimited() || len(locked.Network.AllowFrom) != 2 {
		t.Errorf("locked: %+v; want the top level's allowFrom and its own egress", locked.Network)
	}
	if p.Network.Egress != nil {
		t.Error("ForEnv changed the top level's network")
	}
	// Left out, policies are on.
	bare, err := Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads: [{name: w, kind: service, lang: go}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !bare.NetworkPolicy() || bare.EgressLimited() {
		t.Error("without network: policies should be on, egress open")
	}
	// egress: [] limits egress to what skiff adds.
	empty, err := Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nnetwork: {egress: []}\nworkloads: [{name: w, kind: service, lang: go}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !empty.EgressLimited() {
		t.Error("egress: [] should limit egress")
	}
}

func TestNetworkErrors(t *testing.T) {
	const bad = `apiVersion: skiff.dev/v1alpha1
name: shop
domain: example.com
network:
  policy: maybe
  allowFrom:
    - {}
    - namespace: Monitoring
    - cidr: 10.0.0.0/33
    - namespace: a
      cidr: 10.0.0.0/8
    - pods: {"bad key!": x}
  egress:
    - namespace: b
      ports: [0]
workloads:
  - name: web
    kind: service
    lang: go
    expose: {tls: off, ingress: {className: nginx}}
environments:
  prod:
    network: {policy: yes}
`
	_, err := Parse([]byte(bad))
	var verrs ValidationErrors
	if !errors.As(err, &verrs) {
		t.Fatalf("Parse = %v; want validation errors", err)
	}
	want := map[string]string{
		"network.policy":                     `5: network.policy "maybe" is not on or off; use ` + "`policy: on`",
		"network.allowFrom[0]":               "7: network.allowFrom[0] names no namespace, pods or cidr",
		"network.allowFrom[1].namespace":     `8: network.allowFrom[1].namespace "Monitoring" is not a valid name`,
		"network.allowFrom[2].cidr":          `9: network.allowFrom[2].cidr "10.0.0.0/33" is not a CIDR block`,
		"network.allowFrom[3]":               "10: network.allowFrom[3] names both a cidr and pods or a namespace",
		"network.allowFrom[4].pods.bad key!": "12: network.allowFrom[4].pods.bad key! is not a label name",
		"network.egress[0].ports[0]":         "15: network.egress[0].ports[0] 0 is out of range",
		"workloads[0].expose.ingress":        "20: workloads[0].expose.ingress is refused by the workload's NetworkPolicy: skiff does not know where the Ingress controller's pods run; set network.gatewayNamespace",
		"environments.prod.network.policy":   `23: environments.prod.network.policy "yes" is not on or off`,
	}
	got := map[string]string{}
	for _, e := range verrs {
		got[e.Path] = e.Error()
	}
	for path, w := range want {
		line, msg, _ := strings.Cut(w, ": ")
		g, ok := got[path]
		if !ok {
			t.Errorf("no error for %s; got:\n%v", path, err)
			continue
		}
		if !strings.HasPrefix(g, "line "+line+": ") || !strings.Contains(g, msg) {
			t.Errorf("%s: got %q; want line %s and %q", path, g, line, msg)
		}
	}
	if len(verrs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(verrs), len(want), err)
	}

	// The Ingress's controller named: valid; policy off: valid too.
	for _, fix := range []string{"network: {gatewayNamespace: ingress-nginx}\n", "network: {policy: off}\n"} {
		ok := "apiVersion: skiff.dev/v1alpha1\nname: shop\n" + fix +
			"workloads: [{name: web, kind: service, lang: go, expose: {host: a.example.com, tls: off, ingress: {className: nginx}}}]\n"
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("with %s: %v", strings.TrimSpace(fix), err)
		}
	}
}

func TestNetworkWarnings(t *testing.T) {
	p, err := Parse([]byte(`apiVersion: skiff.dev/v1alpha1
name: shop
events: {bus: nats://bus.example.com:4222}
network: {egress: [{namespace: db}]}
workloads:
  - name: web
    kind: service
    lang: go
    liveConfig: true
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range p.Warnings {
		got = append(got, w.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"line 4: network.egress does not let the workloads reach the bus nats://bus.example.com:4222",
		"line 9: workloads[0].liveConfig watches its ConfigMap through the API server",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}

func TestBusPeer(t *testing.T) {
	for bus, want := range map[string]string{
		"nats://nats.nats:4222":            "ns=nats ports=[4222]",
		"nats://nats.events.svc:4223":      "ns=events ports=[4223]",
		"tls://nats.bus.svc.cluster.local": "ns=bus ports=[4222]",
		"nats://198.18.0.7:4222":           "cidr=198.18.0.7/32 ports=[4222]",
		"nats://[2001:db8::1]:4222":        "cidr=2001:db8::1/128 ports=[4222]",
		"nats://nats.example.com:4222":     "outside",
	} {
		p, ok := BusPeer(bus)
		got := "outside"
		switch {
		case ok && p.CIDR != "":
			got = fmt.Sprintf("cidr=%s ports=%v", p.CIDR, p.Ports)
		case ok:
			got = fmt.Sprintf("ns=%s ports=%v", p.Namespace, p.Ports)
		}
		if got != want {
			t.Errorf("BusPeer(%s) = %s; want %s", bus, got, want)
		}
	}
}

func TestNetworkMarshal(t *testing.T) {
	p := &Project{APIVersion: APIVersion, Name: "shop", Workloads: []Workload{{Name: "w", Kind: KindService, Lang: LangGo}},
		Network: &Network{Policy: PolicyOn}}
	data, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\nnetwork: {policy: on}\n") {
		t.Errorf("Marshal wrote:\n%s", data)
	}
	back, err := Parse(data)
	if err != nil || !back.NetworkPolicy() || back.Network.Policy != PolicyOn {
		t.Errorf("read back: %v, %+v", err, back)
	}
	p.Network = &Network{Policy: PolicyOff, AllowFrom: []Peer{{Namespace: "monitoring"}}}
	if data, err = Marshal(p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "network:\n  policy: off\n  allowFrom:\n    - namespace: monitoring\n") {
		t.Errorf("Marshal wrote:\n%s", data)
	}
	if back, err = Parse(data); err != nil || back.NetworkPolicy() {
		t.Errorf("read back: %v, %+v", err, back)
	}
}
