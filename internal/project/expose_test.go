package project

import (
	"errors"
	"strings"
	"testing"
)

const exposed = `apiVersion: skiff.dev/v1alpha1
name: shop
domain: example.com
gateway: {name: edge, namespace: infra, listener: https}
tls: {issuer: letsencrypt, kind: ClusterIssuer}
network: {gatewayNamespace: ingress-nginx}
workloads:
  - name: front
    kind: service
    lang: go
    expose: true
  - name: api
    kind: function
    lang: go
    expose: {host: api.example.org, path: /v1, tls: {secret: api-cert}}
  - name: legacy
    kind: service
    lang: go
    expose: {tls: off, ingress: {className: nginx}}
  - name: hidden
    kind: service
    lang: go
    expose: false
environments:
  staging:
    domain: staging.example.com
    tls: off
  prod:
    gateway: {name: prod-edge, namespace: infra}
    tls: auto
`

func TestExposure(t *testing.T) {
	p, err := Parse([]byte(exposed))
	if err != nil {
		t.Fatal(err)
	}
	w := func(p *Project, name string) *Workload { x, _ := p.Workload(name); return x }

	front := p.Exposure(w(p, "front"))
	if front.Host != "front.shop.example.com" || front.Path != "/" || front.URL() != "https://front.shop.example.com/" {
		t.Errorf("front = %+v (%s)", front, front.URL())
	}
	if front.TLS != (TLS{Mode: TLSAuto, Issuer: "letsencrypt", Kind: IssuerKindCluster}) || front.SecretName("front") != "front-tls" {
		t.Errorf("front tls = %+v, secret %s", front.TLS, front.SecretName("front"))
	}
	if g := front.Gateway; g == nil || *g != (Gateway{Name: "edge", Namespace: "infra", Listener: "https"}) || front.Ingress != nil {
		t.Errorf("front gateway = %+v ingress %+v", g, front.Ingress)
	}
	api := p.Exposure(w(p, "api"))
	if api.URL() != "https://api.example.org/v1" || api.TLS.Mode != TLSSecret || api.SecretName("api") != "api-cert" {
		t.Errorf("api = %+v", api)
	}
	legacy := p.Exposure(w(p, "legacy"))
	if legacy.Gateway != nil || legacy.Ingress == nil || legacy.Ingress.ClassName != "nginx" || legacy.URL() != "http://legacy.shop.example.com/" ||
		legacy.SecretName("legacy") != "" {
		t.Errorf("legacy = %+v", legacy)
	}
	if x := p.Exposure(w(p, "hidden")); x != nil {
		t.Errorf("expose: false gives %+v, want nil", x)
	}
	if got := strings.Join(p.ExposedWorkloads(), ","); got != "front,api,legacy" {
		t.Errorf("ExposedWorkloads = %s", got)
	}

	staging, err := p.ForEnv("staging")
	if err != nil {
		t.Fatal(err)
	}
	if x := staging.Exposure(w(staging, "front")); x.URL() != "http://front.shop.staging.example.com/" || x.Gateway.Name != "edge" {
		t.Errorf("staging front = %+v (%s)", x, x.URL())
	}
	prod, err := p.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	// prod's `tls: auto` takes the top level's issuer; its gateway has no
	// listener, and no namespace defaults to the project's.
	if x := prod.Exposure(w(prod, "front")); x.TLS.Issuer != "letsencrypt" || *x.Gateway != (Gateway{Name: "prod-edge", Namespace: "infra"}) {
		t.Errorf("prod front = %+v gateway %+v", x, x.Gateway)
	}
	if p.Domain != "example.com" || p.Gateway.Name != "edge" || p.TLS.Mode != TLSAuto {
		t.Error("ForEnv changed the top level")
	}
}

func TestExposeMarshalsBack(t *testing.T) {
	p, err := Parse([]byte(exposed))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"expose: true", "expose: false", "tls: \"off\"", "secret: api-cert", "issuer: letsencrypt", "className: nginx"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("marshalled manifest lacks %q:\n%s", want, out)
		}
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("the marshalled manifest does not load: %v\n%s", err, out)
	}
	for _, n := range []string{"front", "api", "legacy"} {
		a, _ := p.Workload(n)
		b, _ := again.Workload(n)
		if x, y := p.Exposure(a), again.Exposure(b); x.URL() != y.URL() || x.TLS != y.TLS {
			t.Errorf("%s: %+v, after a round trip %+v", n, x, y)
		}
	}
}

func TestExposeErrors(t *testing.T) {
	head := "apiVersion: skiff.dev/v1alpha1\nname: shop\n"
	one := func(top, expose string) string {
		return head + top + "workloads:\n  - name: front\n    kind: service\n    lang: go\n    expose: " + expose + "\n"
	}
	gw := "gateway: {name: edge, namespace: infra}\n"
	tests := []struct {
		name, doc string
		path      string
		line      int
		want      string
	}{
		{"not a bool", one(gw+"domain: example.com\n", "yes"), "workloads[0].expose", 9, `"yes" is not true, false or a mapping`},
		{"bad host", one(gw, "{host: Shop_Front.example.com}"), "workloads[0].expose.host", 8, `"Shop_Front.example.com" is not a host name; use a DNS name`},
		{"wildcard with auto", one(gw+"tls: {issuer: le}\n", "{host: '*.example.com', tls: auto}"), "workloads[0].expose.host", 9, "cannot issue a wildcard"},
		{"wildcard with the top level's issuer", one(gw+"tls: {issuer: le}\n", "{host: '*.example.com'}"), "workloads[0].expose.host", 9, "cannot issue a wildcard"},
		{"bad path", one(gw, "{host: a.example.com, path: api}"), "workloads[0].expose.path", 8, `"api" does not start with /`},
		{"dotted path", one(gw, "{host: a.example.com, path: /a/../b}"), "workloads[0].expose.path", 8, "is not a clean path"},
		{"no host, no domain", one(gw, "true"), "workloads[0].expose", 8, "has no host, and skiff.yaml no domain"},
		{"no gateway", one("domain: example.com\n", "true"), "workloads[0].expose", 8, "has no Gateway to attach to"},
		{"bad domain", one(gw+"domain: -bad.com\n", "true"), "domain", 4, `"-bad.com" is not a host name`},
		{"auto without issuer", one(gw+"domain: example.com\ntls: auto\n", "true"), "tls", 5, "is auto and names no cert-manager issuer"},
		{"own auto without issuer", one(gw+"domain: example.com\n", "{tls: auto}"), "workloads[0].expose.tls", 9, "is auto and names no cert-manager issuer"},
		{"bad tls word", one(gw+"domain: example.com\n", "{tls: on}"), "workloads[0].expose.tls", 9, `"on" is not a TLS setting`},
		{"issuer and secret", one(gw+"domain: example.com\n", "{tls: {issuer: a, secret: b}}"), "workloads[0].expose.tls", 9, "names both an issuer and a secret"},
		{"bad issuer kind", one(gw+"domain: example.com\ntls: {issuer: a, kind: Vault}\n", "true"), "tls.kind", 5, `"Vault" is not known`},
		{"gateway without name", one("gateway: {namespace: infra}\ndomain: example.com\n", "true"), "gateway.name", 3, "is missing"},
		{"unknown expose field", one(gw+"domain: example.com\n", "{hots: a.example.com}"), "workloads[0].expose.hots", 9, "did you mean host?"},
		{"bad class", one(gw, "{host: a.example.com, ingress: {className: NGINX}}"), "workloads[0].expose.ingress.className", 8, "is not a Kubernetes name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var verrs ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("err = %v, want validation errors", err)
			}
			for _, e := range verrs {
				if e.Path == tc.path {
					if !strings.Contains(e.Error(), tc.want) {
						t.Errorf("%s: %v, want %q", tc.path, e, tc.want)
					}
					if e.Line != tc.line {
						t.Errorf("%s: line %d, want %d", tc.path, e.Line, tc.line)
					}
					return
				}
			}
			t.Errorf("no error at %s; got %v", tc.path, err)
		})
	}
}

func TestExposeSameHostAndPath(t *testing.T) {
	doc := `apiVersion: skiff.dev/v1alpha1
name: shop
domain: example.com
gateway: {name: edge}
workloads:
  - name: front
    kind: service
    lang: go
    expose: {host: www.example.com}
  - name: api
    kind: service
    lang: go
    expose: {host: www.example.com, path: /api}
  - name: admin
    kind: service
    lang: go
    expose: true
environments:
  prod:
    domain: www.example.com
    workloads: {}
  other:
    domain: example.net
`
	// front and api share a host, not a path: fine. In prod, admin's host
	// is admin.shop.www.example.com: fine too.
	if _, err := Parse([]byte(doc)); err != nil {
		t.Fatalf("distinct paths on one host: %v", err)
	}
	clash := strings.Replace(doc, "path: /api", "path: /", 1)
	_, err := Parse([]byte(clash))
	if err == nil || !strings.Contains(err.Error(), "skiff.yaml") && !strings.Contains(err.Error(), "workloads[1].expose takes www.example.com/, as workloads[0] (front) does") {
		t.Fatalf("err = %v, want the clash of front and api", err)
	}
	var verrs ValidationErrors
	errors.As(err, &verrs)
	if verrs[0].Line != 13 {
		t.Errorf("line = %d, want 13", verrs[0].Line)
	}
	// Reported once, not again for each environment that changes the domain.
	if n := strings.Count(err.Error(), "takes www.example.com/"); n != 1 {
		t.Errorf("the clash is reported %d times: %v", n, err)
	}

	// A clash only an environment makes names it.
	envClash := strings.Replace(doc, "expose: true", "expose: {host: admin.shop.example.net}", 1)
	envClash = strings.Replace(envClash, "expose: {host: www.example.com, path: /api}", "expose: true", 1)
	envClash = strings.Replace(envClash, "  - name: admin", "  - name: shop", 1)
	envClash = strings.Replace(envClash, "expose: {host: admin.shop.example.net}", "expose: {host: api.shop.example.net}", 1)
	_, err = Parse([]byte(envClash))
	if err == nil || !strings.Contains(err.Error(), "workloads[2].expose takes api.shop.example.net/, as workloads[1] (api) does in other") {
		t.Errorf("err = %v, want the clash in environment other", err)
	}
}

func TestListenerName(t *testing.T) {
	if n := ListenerName("front", "shop"); n != "skiff-shop-front" {
		t.Errorf("ListenerName = %s", n)
	}
	long := ListenerName("a-workload-with-a-long-name", "a-namespace-with-a-rather-long-name-too")
	if len(long) > 63 || !strings.HasPrefix(long, "skiff-a-namespace-with") || long == ListenerName("a-workload-with-a-long-name", "a-namespace-with-a-rather-long-name-to") {
		t.Errorf("ListenerName of long names = %s (%d)", long, len(long))
	}
	x := &Exposure{Gateway: &Gateway{Name: "edge", AddListeners: true}, TLS: TLS{Mode: TLSOff}}
	if n := x.AddedListener("front", "shop"); n != "" {
		t.Errorf("a listener for tls off: %s", n)
	}
}

// With addListeners, two workloads with TLS may not share a host (a
// Gateway's listeners on one port may not share a hostname).
func TestAddListenersOneHostOneWorkload(t *testing.T) {
	doc := `apiVersion: skiff.dev/v1alpha1
name: shop
gateway: {name: edge, addListeners: true}
tls: {issuer: le}
workloads:
  - name: front
    kind: service
    lang: go
    expose: {host: www.example.com}
  - name: api
    kind: service
    lang: go
    expose: {host: www.example.com, path: /api}
`
	_, err := Parse([]byte(doc))
	var verrs ValidationErrors
	if !errors.As(err, &verrs) || verrs[0].Line != 13 || !strings.Contains(err.Error(), "workloads[1].expose is on www.example.com, as workloads[0] (front) is, and gateway.addListeners adds one listener per host") {
		t.Fatalf("err = %v", err)
	}
	// Without addListeners, or without TLS for one of them, it is fine.
	for _, ok := range []string{strings.Replace(doc, ", addListeners: true", "", 1), strings.Replace(doc, "path: /api}", "path: /api, tls: off}", 1)} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("%v\n%s", err, ok)
		}
	}
}
