package chart

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

const exposeDoc = `apiVersion: skiff.dev/v1alpha1
name: shop
domain: example.com
gateway: {name: edge, namespace: infra, listener: https}
tls: {issuer: letsencrypt}
network: {gatewayNamespace: ingress-nginx}
workloads:
  - name: front
    kind: service
    lang: go
    port: 3000
    expose: true
  - name: thumbs
    kind: function
    lang: go
    scale: {min: 0}
    expose: {host: thumbs.example.org, path: /t, tls: off}
  - name: api
    kind: service
    lang: go
    expose: {tls: {secret: api-cert}}
  - name: legacy
    kind: service
    lang: go
    expose: {ingress: {className: nginx}}
  - name: quiet
    kind: service
    lang: go
`

// httpRoute, certificate and referenceGrant hold the fields skiff sets, as
// Gateway API and cert-manager name them.
type httpRoute struct {
	Spec struct {
		ParentRefs []struct {
			Group, Kind, Name, Namespace string
			SectionName                  string `json:"sectionName"`
		} `json:"parentRefs"`
		Hostnames []string `json:"hostnames"`
		Rules     []struct {
			Matches []struct {
				Path struct{ Type, Value string } `json:"path"`
			} `json:"matches"`
			BackendRefs []struct {
				Group     *string `json:"group"`
				Kind      string  `json:"kind"`
				Name      string  `json:"name"`
				Namespace string  `json:"namespace"`
				Port      int     `json:"port"`
			} `json:"backendRefs"`
		} `json:"rules"`
	} `json:"spec"`
}

type certificate struct {
	Spec struct {
		SecretName string                             `json:"secretName"`
		DNSNames   []string                           `json:"dnsNames"`
		IssuerRef  struct{ Group, Kind, Name string } `json:"issuerRef"`
	} `json:"spec"`
}

type referenceGrant struct {
	Spec struct {
		From []struct{ Group, Kind, Namespace string } `json:"from"`
		To   []struct{ Group, Kind, Name string }      `json:"to"`
	} `json:"spec"`
}

func decode[T any](t *testing.T, objs map[string]string, key string) *T {
	t.Helper()
	doc, ok := objs[key]
	if !ok {
		t.Fatalf("no %s rendered; have %v", key, keys(objs))
	}
	var v T
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return &v
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestExposeRoute(t *testing.T) {
	objs := renderAll(t, exposeDoc, "front")
	r := decode[httpRoute](t, objs, "HTTPRoute/front")
	if len(r.Spec.ParentRefs) != 1 {
		t.Fatalf("parentRefs = %+v", r.Spec.ParentRefs)
	}
	if p := r.Spec.ParentRefs[0]; p.Group != "gateway.networking.k8s.io" || p.Kind != "Gateway" || p.Name != "edge" || p.Namespace != "infra" || p.SectionName != "https" {
		t.Errorf("parentRef = %+v", p)
	}
	if !slices.Equal(r.Spec.Hostnames, []string{"front.shop.example.com"}) {
		t.Errorf("hostnames = %v", r.Spec.Hostnames)
	}
	rule := r.Spec.Rules[0]
	if m := rule.Matches[0].Path; m.Type != "PathPrefix" || m.Value != "/" {
		t.Errorf("match = %+v", m)
	}
	if b := rule.BackendRefs[0]; b.Kind != "Service" || b.Name != "front" || b.Namespace != "" || b.Port != 3000 || b.Group == nil || *b.Group != "" {
		t.Errorf("backendRef = %+v", b)
	}
	// tls: auto (the top level's issuer): a Certificate for the host, and
	// the Gateway, in another namespace, may read its Secret.
	c := decode[certificate](t, objs, "Certificate/front")
	if c.Spec.SecretName != "front-tls" || !slices.Equal(c.Spec.DNSNames, []string{"front.shop.example.com"}) ||
		c.Spec.IssuerRef != (struct{ Group, Kind, Name string }{"cert-manager.io", "ClusterIssuer", "letsencrypt"}) {
		t.Errorf("certificate = %+v", c.Spec)
	}
	g := decode[referenceGrant](t, objs, "ReferenceGrant/front-gateway-tls")
	if len(g.Spec.From) != 1 || g.Spec.From[0] != (struct{ Group, Kind, Namespace string }{"gateway.networking.k8s.io", "Gateway", "infra"}) ||
		len(g.Spec.To) != 1 || g.Spec.To[0] != (struct{ Group, Kind, Name string }{"", "Secret", "front-tls"}) {
		t.Errorf("referenceGrant = %+v", g.Spec)
	}
	if _, ok := objs["Ingress/front"]; ok {
		t.Error("an Ingress is rendered beside the HTTPRoute")
	}
}

func TestExposeScaledGoesThroughTheInterceptor(t *testing.T) {
	objs := renderAll(t, exposeDoc, "thumbs")
	r := decode[httpRoute](t, objs, "HTTPRoute/thumbs")
	if b := r.Spec.Rules[0].BackendRefs[0]; b.Name != InterceptorService || b.Namespace != InterceptorNamespace || b.Port != InterceptorPort {
		t.Errorf("backendRef = %+v, want the interceptor %s/%s:%d", b, InterceptorNamespace, InterceptorService, InterceptorPort)
	}
	if m := r.Spec.Rules[0].Matches[0].Path; m.Value != "/t" {
		t.Errorf("path = %+v", m)
	}
	// The interceptor routes on Host: the public one is among its hosts.
	ir := decode[interceptorRoute](t, objs, "InterceptorRoute/thumbs")
	if !slices.Contains(ir.Spec.Rules[0].Hosts, "thumbs.example.org") || !slices.Contains(ir.Spec.Rules[0].Hosts, "thumbs.shop") {
		t.Errorf("interceptor hosts = %v", ir.Spec.Rules[0].Hosts)
	}
	// tls: off: no certificate, nothing to grant.
	for _, k := range []string{"Certificate/thumbs", "ReferenceGrant/thumbs-gateway-tls"} {
		if _, ok := objs[k]; ok {
			t.Errorf("%s rendered with tls off", k)
		}
	}
}

func TestExposeOwnSecret(t *testing.T) {
	objs := renderAll(t, exposeDoc, "api")
	if _, ok := objs["Certificate/api"]; ok {
		t.Error("a Certificate is rendered for a workload with its own secret")
	}
	g := decode[referenceGrant](t, objs, "ReferenceGrant/api-gateway-tls")
	if g.Spec.To[0].Name != "api-cert" {
		t.Errorf("grant = %+v, want the Secret api-cert", g.Spec.To)
	}
	// A Gateway in the workload's own namespace needs no grant.
	same := strings.Replace(exposeDoc, "namespace: infra, ", "", 1)
	objs = renderAll(t, same, "api")
	if _, ok := objs["ReferenceGrant/api-gateway-tls"]; ok {
		t.Error("a ReferenceGrant is rendered for a Gateway in the workload's namespace")
	}
	if r := decode[httpRoute](t, objs, "HTTPRoute/api"); r.Spec.ParentRefs[0].Namespace != "shop" {
		t.Errorf("parentRef namespace = %q, want the project's", r.Spec.ParentRefs[0].Namespace)
	}
}

func TestExposeIngress(t *testing.T) {
	objs := renderAll(t, exposeDoc, "legacy")
	if _, ok := objs["HTTPRoute/legacy"]; ok {
		t.Error("an HTTPRoute is rendered beside the Ingress")
	}
	in := decode[networkingv1.Ingress](t, objs, "Ingress/legacy")
	if in.Spec.IngressClassName == nil || *in.Spec.IngressClassName != "nginx" {
		t.Errorf("class = %v", in.Spec.IngressClassName)
	}
	if len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName != "legacy-tls" || !slices.Equal(in.Spec.TLS[0].Hosts, []string{"legacy.shop.example.com"}) {
		t.Errorf("tls = %+v", in.Spec.TLS)
	}
	rule := in.Spec.Rules[0]
	p := rule.HTTP.Paths[0]
	if rule.Host != "legacy.shop.example.com" || p.Path != "/" || *p.PathType != networkingv1.PathTypePrefix ||
		p.Backend.Service.Name != "legacy" || p.Backend.Service.Port.Number != 8080 {
		t.Errorf("rule = %+v", rule)
	}
	if _, ok := objs["Certificate/legacy"]; !ok {
		t.Error("no Certificate for the Ingress with tls auto")
	}
	if _, ok := objs["ReferenceGrant/legacy-gateway-tls"]; ok {
		t.Error("a ReferenceGrant is rendered for an Ingress")
	}
}

func TestNotExposedRendersNoEdge(t *testing.T) {
	objs := renderAll(t, exposeDoc, "quiet")
	for k := range objs {
		for _, kind := range []string{"HTTPRoute/", "Ingress/", "Certificate/", "ReferenceGrant/"} {
			if strings.HasPrefix(k, kind) {
				t.Errorf("%s rendered for a workload that is not exposed", k)
			}
		}
	}
}

func TestExposeEnvironment(t *testing.T) {
	doc := exposeDoc + "environments:\n  staging:\n    domain: staging.example.com\n    tls: off\n"
	objs := renderEnv(t, doc, "staging", "front")
	r := decode[httpRoute](t, objs, "HTTPRoute/front")
	if !slices.Equal(r.Spec.Hostnames, []string{"front.shop.staging.example.com"}) {
		t.Errorf("staging hostnames = %v", r.Spec.Hostnames)
	}
	if _, ok := objs["Certificate/front"]; ok {
		t.Error("staging's tls off still renders a Certificate")
	}
}

// renderEnv renders a workload of doc as environment env resolves it.
func renderEnv(t *testing.T, doc, env, name string) map[string]string {
	t.Helper()
	top, err := project.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p, err := top.ForEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	return splitObjects(t, renderRelease(t, p, name, p.Namespace, nil))
}

// With gateway.addListeners, a route attached to a named listener
// attaches to the listener deploy adds for its host too.
func TestExposeAddedListener(t *testing.T) {
	doc := strings.Replace(exposeDoc, "listener: https}", "listener: https, addListeners: true}", 1)
	r := decode[httpRoute](t, renderAll(t, doc, "front"), "HTTPRoute/front")
	if len(r.Spec.ParentRefs) != 2 || r.Spec.ParentRefs[0].SectionName != "https" || r.Spec.ParentRefs[1].SectionName != "skiff-shop-front" ||
		r.Spec.ParentRefs[1].Name != "edge" || r.Spec.ParentRefs[1].Namespace != "infra" {
		t.Errorf("parentRefs = %+v", r.Spec.ParentRefs)
	}
	// tls off: no certificate to serve, no listener.
	r = decode[httpRoute](t, renderAll(t, doc, "thumbs"), "HTTPRoute/thumbs")
	if len(r.Spec.ParentRefs) != 1 {
		t.Errorf("thumbs (tls off) parentRefs = %+v", r.Spec.ParentRefs)
	}
}
