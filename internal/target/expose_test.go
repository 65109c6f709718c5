package target

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/project"
)

var exposedOrders = &project.Workload{Name: "orders", Kind: "service", Path: "orders", Port: 8080, Expose: &project.Expose{Host: "orders.example.com"}}

// exposedCluster is a cluster whose project exposes on Gateway infra/edge
// (listener https) with tls from the ClusterIssuer le.
func exposedCluster(t *testing.T, objs ...runtime.Object) *Cluster {
	t.Helper()
	c, _ := cluster(t, "", dep("orders", 1, 1), pod("orders-a", true, 0))
	c.Project.Gateway = &project.Gateway{Name: "edge", Namespace: "infra", Listener: "https"}
	c.Project.TLS = &project.TLS{Mode: project.TLSAuto, Issuer: "le", Kind: project.IssuerKindCluster}
	c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{HTTPRoutes: "HTTPRouteList", Certificates: "CertificateList"}, objs...)
	return c
}

type cond struct{ typ, status, reason, msg string }

func conds(cs ...cond) []any {
	var out []any
	for _, c := range cs {
		out = append(out, map[string]any{"type": c.typ, "status": c.status, "reason": c.reason, "message": c.msg, "observedGeneration": int64(2)})
	}
	return out
}

// route is the HTTPRoute orders at generation 2 with the conditions the
// Gateway set for the parent gateway/listener.
func route(gateway, listener string, cs ...cond) *unstructured.Unstructured {
	ns, name, _ := strings.Cut(gateway, "/")
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "orders", "namespace": "shop", "generation": int64(2)},
		"status": map[string]any{"parents": []any{map[string]any{
			"parentRef":      map[string]any{"name": name, "namespace": ns, "sectionName": listener},
			"controllerName": "traefik.io/gateway-controller",
			"conditions":     conds(cs...),
		}}},
	}}
	return u
}

func cert(cs ...cond) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "orders", "namespace": "shop", "generation": int64(2)},
		"status":   map[string]any{"conditions": conds(cs...)},
	}}
}

var (
	accepted = cond{"Accepted", "True", "Accepted", ""}
	resolved = cond{"ResolvedRefs", "True", "ResolvedRefs", ""}
	issued   = cond{"Ready", "True", "Ready", "Certificate is up to date and has not expired"}
)

func TestWaitExposedRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		want []string
		as   any
	}{
		{"host not allowed", []runtime.Object{route("infra/edge", "https",
			cond{"Accepted", "False", "NotAllowedByListeners", "No listeners included by this parent ref allowed this attachment."}, resolved)},
			[]string{"the Gateway infra/edge refused the route of orders (host orders.example.com): NotAllowedByListeners: No listeners included", "use a host it allows"},
			new(*RouteRefusedError)},
		{"host not matched, no message", []runtime.Object{route("infra/edge", "https",
			cond{"Accepted", "False", "NoMatchingListenerHostname", ""}, resolved)},
			[]string{"refused the route of orders (host orders.example.com): NoMatchingListenerHostname; no listener of the Gateway admits this host"},
			new(*RouteRefusedError)},
		{"interceptor not granted", []runtime.Object{route("infra/edge", "https", accepted,
			cond{"ResolvedRefs", "False", "RefNotPermitted", "Cannot load HTTPRoute BackendRef keda/keda-add-ons-http-interceptor-proxy: missing ReferenceGrant"})},
			[]string{"cannot send requests on the route of orders", "missing ReferenceGrant", "kind: ReferenceGrant", "namespace: keda", "namespace: shop"},
			new(*RouteRefusedError)},
		{"issuer fails", []runtime.Object{route("infra/edge", "https", accepted, resolved),
			cert(cond{"Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"}, cond{"Issuing", "False", "Failed", "The certificate request has failed to complete and will be retried: ACME order failed"})},
			[]string{"cert-manager could not issue the certificate of orders (host orders.example.com) from ClusterIssuer le: Failed: The certificate request has failed", "ACME order failed"},
			new(*CertificateFailedError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exposedCluster(t, tc.objs...)
			// A refusal ends the wait at once: no deadline is needed.
			err := c.For(exposedOrders).(*Deployment).waitExposed(context.Background(), exposedRelease(c, exposedOrders))
			if err == nil {
				t.Fatal("waitExposed = nil, want the refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if !errors.As(err, tc.as) {
				t.Errorf("error is %T, want %T", err, tc.as)
			}
		})
	}
}

func TestWaitExposedWaitsForTheGatewayAndCertManager(t *testing.T) {
	ctx := context.Background()
	// The route as the Gateway last saw it (generation 1): not this version.
	old := route("infra/edge", "https", accepted, resolved)
	unstructured.SetNestedField(old.Object, int64(3), "metadata", "generation")
	c := exposedCluster(t, old)

	short, cancel := context.WithTimeoutCause(ctx, 200*time.Millisecond, errors.New("not ready within 200ms"))
	err := c.For(exposedOrders).(*Deployment).waitExposed(short, exposedRelease(c, exposedOrders))
	cancel()
	if err == nil || !strings.Contains(err.Error(), "the route of orders (host orders.example.com) is not accepted by the Gateway infra/edge: the Gateway has not looked at this version of the route yet (not ready within 200ms)") {
		t.Fatalf("waitExposed = %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- c.For(exposedOrders).(*Deployment).waitExposed(ctx, exposedRelease(c, exposedOrders)) }()
	// The Gateway accepts the route; then cert-manager issues the certificate.
	if _, err := c.Dynamic.Resource(HTTPRoutes).Namespace("shop").Update(ctx, route("infra/edge", "https", accepted, resolved), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(Certificates).Namespace("shop").Create(ctx, cert(issued), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitDone(t, done, "waitExposed did not see the route accepted and the certificate ready")
}

// exposedRelease is a release of w as deploy makes it: its values are
// skiff's for the workload.
func exposedRelease(c *Cluster, w *project.Workload) *deploy.Record {
	rel := deployed("")
	rel.Namespace = "shop"
	rel.Config = chart.Values(c.Project, w, "shop", "r/orders@sha256:1")
	return rel
}

// The release, not skiff.yaml, says what to wait for: a rollback to a
// revision that did not expose the workload waits for no route, and the
// exposure read back from a release is the one skiff.yaml made.
func TestWaitExposedFollowsTheRelease(t *testing.T) {
	c := exposedCluster(t) // no route, no certificate
	if err := c.For(exposedOrders).(*Deployment).waitExposed(context.Background(), deployed("")); err != nil {
		t.Errorf("waitExposed of a release without expose = %v", err)
	}
	x := ReleasedExposure(exposedRelease(c, exposedOrders))
	want := c.Project.Exposure(exposedOrders)
	if x == nil || x.URL() != want.URL() || x.TLS != want.TLS || *x.Gateway != *want.Gateway {
		t.Errorf("ReleasedExposure = %+v (gateway %+v), want %+v (gateway %+v)", x, x.Gateway, want, want.Gateway)
	}
}

// Another parent's conditions (the same Gateway's other listener) are not
// this route's.
func TestRouteStateMatchesItsParent(t *testing.T) {
	x := &project.Exposure{Host: "orders.example.com", Gateway: &project.Gateway{Name: "edge", Namespace: "infra", Listener: "https"}}
	u := route("infra/edge", "http", accepted, resolved)
	done, why, err := routeState(u, x, "orders", "shop")
	if done || err != nil || !strings.Contains(why, "no word from the Gateway") {
		t.Errorf("routeState = %t, %q, %v; want not done, no word", done, why, err)
	}
	x.Gateway.Listener = "http"
	if done, _, err := routeState(u, x, "orders", "shop"); !done || err != nil {
		t.Errorf("routeState = %t, %v; want done", done, err)
	}
}

func TestStatusShowsURLAndRefusal(t *testing.T) {
	ctx := context.Background()
	c := exposedCluster(t, route("infra/edge", "https", cond{"Accepted", "False", "NoMatchingListenerHostname", "no hostname matches"}, resolved))
	st, err := c.For(exposedOrders).Status(ctx, exposedRelease(c, exposedOrders))
	if err != nil {
		t.Fatal(err)
	}
	if st.URL != "https://orders.example.com/" {
		t.Errorf("url = %q", st.URL)
	}
	if st.State != StateDegraded || len(st.Problems) != 1 || !strings.Contains(st.Problems[0].Message, "NoMatchingListenerHostname: no hostname matches") {
		t.Errorf("state %s, problems %+v", st.State, st.Problems)
	}

	ok := exposedCluster(t, route("infra/edge", "https", accepted, resolved))
	st, err = ok.For(exposedOrders).Status(ctx, exposedRelease(ok, exposedOrders))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateReady || len(st.Problems) != 0 {
		t.Errorf("accepted route: state %s, problems %+v", st.State, st.Problems)
	}
	// Not exposed: no URL.
	if st, _ := ok.For(orders).Status(ctx, deployed("")); st.URL != "" {
		t.Errorf("url of a workload not exposed = %q", st.URL)
	}
}

func TestCheckEdge(t *testing.T) {
	ctx := context.Background()
	gw := &metav1.APIResourceList{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}}}
	cm := &metav1.APIResourceList{GroupVersion: "cert-manager.io/v1", APIResources: []metav1.APIResource{{Name: "certificates", Kind: "Certificate", Namespaced: true}}}
	ingress := &project.Workload{Name: "legacy", Path: "legacy", Expose: &project.Expose{Host: "legacy.example.com", TLS: &project.TLS{Mode: project.TLSOff}, Ingress: &project.Ingress{}}}
	for _, tc := range []struct {
		name string
		apis []*metav1.APIResourceList
		ws   []project.Workload
		want string
	}{
		{"both there", []*metav1.APIResourceList{gw, cm}, []project.Workload{*exposedOrders}, ""},
		{"no Gateway API", []*metav1.APIResourceList{cm}, []project.Workload{*exposedOrders}, "`expose:` of orders in skiff.yaml needs Gateway API"},
		{"no cert-manager", []*metav1.APIResourceList{gw}, []project.Workload{*exposedOrders}, "needs cert-manager (the cert-manager.io/v1 Certificate)"},
		{"an Ingress without TLS needs neither", nil, []project.Workload{*ingress}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exposedCluster(t)
			c.Clientset.Discovery().(*fakediscovery.FakeDiscovery).Resources = tc.apis
			c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{Gateways: "GatewayList"})
			if _, err := c.Dynamic.Resource(Gateways).Namespace("infra").Create(ctx, gateway("True", listener("https", "HTTPS", "")), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			checkMissingEdge(t, c.CheckEngines(ctx, tc.ws), tc.want)
		})
	}
}

func gateway(accepted string, listeners ...map[string]any) *unstructured.Unstructured {
	ls := make([]any, len(listeners))
	for i, l := range listeners {
		ls[i] = l
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "edge", "namespace": "infra", "generation": int64(2)},
		"spec":     map[string]any{"gatewayClassName": "traefik", "listeners": ls},
		"status": map[string]any{"conditions": conds(cond{"Accepted", accepted, "Accepted", ""},
			cond{"Programmed", accepted, "Programmed", ""})},
	}}
}

func listener(name, proto, host string, certs ...string) map[string]any {
	l := map[string]any{"name": name, "protocol": proto, "port": int64(443)}
	if host != "" {
		l["hostname"] = host
	}
	if len(certs) > 0 {
		var refs []any
		for _, c := range certs {
			ns, n, _ := strings.Cut(c, "/")
			refs = append(refs, map[string]any{"kind": "Secret", "name": n, "namespace": ns})
		}
		l["tls"] = map[string]any{"mode": "Terminate", "certificateRefs": refs}
	}
	return l
}

func interceptorGrant(from string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": "from-" + from, "namespace": "keda"},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": from}},
			"to":   []any{map[string]any{"group": "", "kind": "Service", "name": "keda-add-ons-http-interceptor-proxy"}},
		},
	}}
}

func TestCheckGateways(t *testing.T) {
	ctx := context.Background()
	apis := []*metav1.APIResourceList{
		{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}}},
		{GroupVersion: "cert-manager.io/v1", APIResources: []metav1.APIResource{{Name: "certificates", Kind: "Certificate", Namespaced: true}}},
	}
	scaledExposed := *exposedOrders
	scaledExposed.Scale = scaledOrders.Scale
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		w        *project.Workload
		listener string
		problem  string
		warning  string
		found    string
	}{
		{"served with its certificate", []runtime.Object{gateway("True", listener("https", "HTTPS", "", "shop/orders-tls"))}, exposedOrders, "",
			"", "", "listener https serves orders.example.com with the certificate in Secret orders-tls"},
		{"the listener's own certificate", []runtime.Object{gateway("True", listener("https", "HTTPS", "*.example.com", "infra/wildcard"))}, exposedOrders, "",
			"", "serves its own certificate, not the one in Secret shop/orders-tls", ""},
		{"a listener of its own beside the generic one", []runtime.Object{gateway("True", listener("https", "HTTPS", "", "infra/default"),
			listener("https-orders", "HTTPS", "orders.example.com", "shop/orders-tls"))}, exposedOrders, "",
			"", "", "listener https-orders serves orders.example.com"},
		{"no listener for the host", []runtime.Object{gateway("True", listener("https", "HTTPS", "*.allowed.test", "infra/w"))}, exposedOrders, "",
			"no listener of the Gateway infra/edge admits orders's host orders.example.com", "", ""},
		{"the named listener is HTTP", []runtime.Object{gateway("True", listener("http", "HTTP", ""), listener("https", "HTTPS", "*.allowed.test", "infra/w"))}, exposedOrders, "http",
			"no HTTPS listener of the Gateway infra/edge admits", "", ""},
		{"not programmed", []runtime.Object{gateway("False", listener("https", "HTTPS", ""))}, exposedOrders, "",
			"the Gateway infra/edge is not Accepted", "", ""},
		{"no Gateway", nil, exposedOrders, "", "there is no Gateway infra/edge", "", ""},
		{"scaled, no grant", []runtime.Object{gateway("True", listener("https", "HTTPS", "", "shop/orders-tls")), interceptorGrant("other")}, &scaledExposed, "",
			"no ReferenceGrant in namespace keda lets the HTTPRoutes of shop reach the KEDA interceptor", "", ""},
		{"scaled, granted", []runtime.Object{gateway("True", listener("https", "HTTPS", "", "shop/orders-tls")), interceptorGrant("shop")}, &scaledExposed, "",
			"", "", "ReferenceGrant keda/from-shop lets the routes of shop reach the KEDA interceptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exposedCluster(t)
			c.Project.Gateway.Listener = tc.listener
			c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{Gateways: "GatewayList", ReferenceGrants: "ReferenceGrantList"})
			// Created through the client: the fake's guess of the resource
			// of kind Gateway is "gatewaies".
			for _, o := range tc.objs {
				u := o.(*unstructured.Unstructured)
				gvr := ReferenceGrants
				if u.GetKind() == "Gateway" {
					gvr = Gateways
				}
				if _, err := c.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			c.Clientset.Discovery().(*fakediscovery.FakeDiscovery).Resources = apis
			f, err := c.CheckGateways(ctx, []project.Workload{*tc.w})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got []string, want string) {
				all := strings.Join(got, "\n")
				if want == "" && len(got) > 0 && what != "found" {
					t.Errorf("%s: %s, want none", what, all)
				}
				if want != "" && !strings.Contains(all, want) {
					t.Errorf("%s: %q, want %q", what, all, want)
				}
			}
			check("problems", f.Problems, tc.problem)
			check("warnings", f.Warnings, tc.warning)
			check("found", f.Found, tc.found)
		})
	}
}

// Before anything changes, deploy checks the Gateway is there with the
// listener skiff.yaml names (a Gateway says nothing of a route that names
// neither: deploy would wait its whole timeout).
func TestCheckEnginesFindsTheGateway(t *testing.T) {
	ctx := context.Background()
	apis := []*metav1.APIResourceList{
		{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}}},
		{GroupVersion: "cert-manager.io/v1", APIResources: []metav1.APIResource{{Name: "certificates", Kind: "Certificate", Namespaced: true}}},
	}
	for _, tc := range []struct {
		name, listener string
		gateway        bool
		want           string
	}{
		{"there", "https", true, ""},
		{"no listener by that name", "htps", true, "needs the listener htps of the Gateway infra/edge, which the cluster does not have; set gateway.listener in skiff.yaml to one it has: http, https"},
		{"no Gateway", "", false, "needs the Gateway infra/edge, which the cluster does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exposedCluster(t)
			c.Clientset.Discovery().(*fakediscovery.FakeDiscovery).Resources = apis
			c.Project.Gateway.Listener = tc.listener
			c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{Gateways: "GatewayList"})
			if tc.gateway {
				if _, err := c.Dynamic.Resource(Gateways).Namespace("infra").Create(ctx, gateway("True", listener("http", "HTTP", ""), listener("https", "HTTPS", "")), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			checkMissingEdge(t, c.CheckEngines(ctx, []project.Workload{*exposedOrders}), tc.want)
		})
	}
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		listener, host string
		want           bool
	}{
		{"", "a.example.com", true},
		{"a.example.com", "a.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.allowed.skiff.test", "front.skiff.test", false},
		{"b.example.com", "a.example.com", false},
	} {
		if got := HostMatches(tc.listener, tc.host); got != tc.want {
			t.Errorf("HostMatches(%q, %q) = %t", tc.listener, tc.host, got)
		}
	}
}

// Deleting a workload with tls auto removes the Secret cert-manager wrote
// (its Certificate goes with the release); one the user gave stays.
func TestRemainsOfAnExposedWorkload(t *testing.T) {
	c := exposedCluster(t)
	if got := strings.Join(c.For(exposedOrders).Remains().Secrets, ","); got != "orders-secrets,orders-tls" {
		t.Errorf("remains of tls auto = %s", got)
	}
	own := *exposedOrders
	own.Expose = &project.Expose{Host: "orders.example.com", TLS: &project.TLS{Mode: project.TLSSecret, Secret: "orders-tls"}}
	if got := strings.Join(c.For(&own).Remains().Secrets, ","); got != "orders-secrets" {
		t.Errorf("remains of tls secret = %s, want the user's Secret kept", got)
	}
}

// listenerCluster is exposedCluster with gateway.addListeners, a Gateway
// infra/edge with an HTTP and an HTTPS listener, and the server-side
// applies to it recorded (the fake client does not merge them: the test
// answers for the Gateway).
func listenerCluster(t *testing.T) (*Cluster, *[]map[string]any, chan struct{}) {
	t.Helper()
	ctx := context.Background()
	c := exposedCluster(t)
	c.Project.Gateway.Listener = ""
	c.Project.Gateway.AddListeners = true
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{Gateways: "GatewayList"})
	gw := gateway("True", listener("http", "HTTP", ""), listener("https", "HTTPS", "", "infra/default"))
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	ls[1].(map[string]any)["port"] = int64(8443)
	unstructured.SetNestedSlice(gw.Object, ls, "spec", "listeners")
	if _, err := dyn.Resource(Gateways).Namespace("infra").Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var applied []map[string]any
	appliedOne := make(chan struct{}, 10)
	dyn.PrependReactor("patch", "gateways", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if p.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		var body map[string]any
		if err := json.Unmarshal(p.GetPatch(), &body); err != nil {
			return true, nil, err
		}
		applied = append(applied, body)
		appliedOne <- struct{}{}
		return true, gw, nil
	})
	c.Dynamic = dyn
	return c, &applied, appliedOne
}

// setListenerStatus writes the Gateway's status of listener name.
func setListenerStatus(t *testing.T, c *Cluster, name string, cs ...cond) {
	t.Helper()
	ctx := context.Background()
	gw, err := c.Dynamic.Resource(Gateways).Namespace("infra").Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedSlice(gw.Object, []any{map[string]any{"name": name, "conditions": conds(cs...)}}, "status", "listeners")
	if _, err := c.Dynamic.Resource(Gateways).Namespace("infra").Update(ctx, gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAddListenerServesTheCertificate(t *testing.T) {
	ctx := context.Background()
	c, applied, appliedOne := listenerCluster(t)
	x := c.Project.Exposure(exposedOrders)
	rel := exposedRelease(c, exposedOrders)
	if got := ReleasedExposure(rel); got.AddedListener("orders", "shop") != "skiff-shop-orders" {
		t.Fatalf("the release does not say skiff adds a listener: %+v", got.Gateway)
	}
	done := make(chan error, 1)
	go func() { done <- c.For(exposedOrders).(*Deployment).serveCertificate(ctx, rel, x) }()
	<-appliedOne
	setListenerStatus(t, c, "skiff-shop-orders", cond{"ResolvedRefs", "True", "ResolvedRefs", ""}, cond{"Programmed", "True", "Programmed", ""})
	awaitDone(t, done, "serveCertificate did not see the listener programmed")
	ls, _, _ := unstructured.NestedSlice((*applied)[0], "spec", "listeners")
	if len(ls) != 1 {
		t.Fatalf("applied %v", (*applied)[0])
	}
	l := ls[0].(map[string]any)
	ref, _, _ := unstructured.NestedSlice(l, "tls", "certificateRefs")
	sel, _, _ := unstructured.NestedString(l, "allowedRoutes", "namespaces", "selector", "matchLabels", "kubernetes.io/metadata.name")
	if l["name"] != "skiff-shop-orders" || l["hostname"] != "orders.example.com" || l["protocol"] != "HTTPS" || l["port"] != float64(8443) ||
		len(ref) != 1 || ref[0].(map[string]any)["name"] != "orders-tls" || ref[0].(map[string]any)["namespace"] != "shop" || sel != "shop" {
		t.Errorf("listener applied = %v", l)
	}
}

// A listener the Gateway refuses fails the deploy at once, and on a first
// install is taken back off the shared Gateway.
func TestAddedListenerRefusedIsRemovedOnAFirstInstall(t *testing.T) {
	ctx := context.Background()
	c, applied, _ := listenerCluster(t)
	setListenerStatus(t, c, "skiff-shop-orders", cond{"ResolvedRefs", "False", "RefNotPermitted", "missing ReferenceGrant"})
	// The Gateway has the listener, as after the apply.
	gw, _ := c.Dynamic.Resource(Gateways).Namespace("infra").Get(ctx, "edge", metav1.GetOptions{})
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	unstructured.SetNestedSlice(gw.Object, append(ls, listener("skiff-shop-orders", "HTTPS", "orders.example.com", "shop/orders-tls")), "spec", "listeners")
	c.Dynamic.Resource(Gateways).Namespace("infra").Update(ctx, gw, metav1.UpdateOptions{})

	rel := exposedRelease(c, exposedOrders) // version 4: an upgrade keeps it
	err := c.For(exposedOrders).(*Deployment).serveCertificate(ctx, rel, c.Project.Exposure(exposedOrders))
	var refused *ListenerRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "refuses the listener skiff-shop-orders skiff added for orders.example.com: RefNotPermitted: missing ReferenceGrant") {
		t.Fatalf("serveCertificate = %v", err)
	}
	if len(*applied) != 1 {
		t.Errorf("an upgrade's refused listener was removed: %d applies", len(*applied))
	}
	rel.Version = 1
	c.For(exposedOrders).(*Deployment).serveCertificate(ctx, rel, c.Project.Exposure(exposedOrders))
	if n := len(*applied); n != 3 {
		t.Fatalf("%d applies, want the listener, then none", n)
	}
	if ls, _, _ := unstructured.NestedSlice((*applied)[2], "spec", "listeners"); len(ls) != 0 {
		t.Errorf("the removal applied %v, want no listeners", ls)
	}

	// delete removes it the same way, and says its name.
	if !c.For(exposedOrders).Remains().Listener {
		t.Error("Remains does not include the listener")
	}
	name, err := c.RemoveListener(ctx, exposedOrders)
	if err != nil || name != "skiff-shop-orders" || len(*applied) != 4 {
		t.Errorf("RemoveListener = %q, %v (%d applies)", name, err, len(*applied))
	}
}

// checkMissingEdge fails t unless err, CheckEngines' result, is nil when
// want is "" and otherwise a MissingEdgeError whose message has want.
func checkMissingEdge(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("CheckEngines = %v", err)
		}
		return
	}
	var me *MissingEdgeError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), want) {
		t.Fatalf("CheckEngines = %v, want a MissingEdgeError with %q", err, want)
	}
}
