//go:build e2e

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

var (
	httpRouteResource      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	referenceGrantResource = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1beta1", Resource: "referencegrants"}
)

// gatewayEnv is what `env` prints for the gateway (docs/testing.md, "The
// gateway").
type gatewayEnv struct {
	namespace, name  string
	http, https      string // ip:port
	acmeRoot, caRoot *x509.CertPool
	acmeIssuer       string
	caIssuer         string
	ingressClass     string
}

func gatewayFromEnv(t *testing.T) gatewayEnv {
	t.Helper()
	gw := os.Getenv("SKIFF_TEST_GATEWAY")
	ns, name, ok := strings.Cut(gw, "/")
	if !ok {
		t.Skip("SKIFF_TEST_GATEWAY is not set; run `eval $(go run . env)` after `go run . up`")
	}
	e := gatewayEnv{namespace: ns, name: name,
		http: os.Getenv("SKIFF_TEST_GATEWAY_HTTP"), https: os.Getenv("SKIFF_TEST_GATEWAY_HTTPS"),
		acmeIssuer: os.Getenv("SKIFF_TEST_CLUSTER_ISSUER"), caIssuer: os.Getenv("SKIFF_TEST_CA_ISSUER"),
		ingressClass: os.Getenv("SKIFF_TEST_INGRESS_CLASS")}
	roots := func(env string) *x509.CertPool {
		pem, err := os.ReadFile(os.Getenv(env))
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s %s", env, os.Getenv(env))
		}
		return pool
	}
	e.acmeRoot, e.caRoot = roots("SKIFF_TEST_ACME_ROOT"), roots("SKIFF_TEST_CA_ROOT")
	for k, v := range map[string]string{"SKIFF_TEST_GATEWAY_HTTP": e.http, "SKIFF_TEST_GATEWAY_HTTPS": e.https,
		"SKIFF_TEST_CLUSTER_ISSUER": e.acmeIssuer, "SKIFF_TEST_CA_ISSUER": e.caIssuer, "SKIFF_TEST_INGRESS_CLASS": e.ingressClass} {
		if v == "" {
			t.Fatalf("%s is not set", k)
		}
	}
	return e
}

// getVia sends GET / for host to addr (no DNS): the Host header, and for
// https the TLS server name, are the host's; TLS verifies against roots.
func getVia(ctx context.Context, addr, host string, roots *x509.CertPool) (int, string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
	scheme := "http"
	if roots != nil {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: host}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/", nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// routeCondition returns the status, reason and message of the HTTPRoute's
// condition typ for the parent gateway ns/name ("" when not set yet).
func routeCondition(ctx context.Context, dyn dynamic.Interface, ns, route, gwNS, gwName, typ string) (string, string, string) {
	o, err := dyn.Resource(httpRouteResource).Namespace(ns).Get(ctx, route, metav1.GetOptions{})
	if err != nil {
		return "", "", err.Error()
	}
	parents, _, _ := unstructured.NestedSlice(o.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		ref, _ := pm["parentRef"].(map[string]any)
		if ref["name"] != gwName || (ref["namespace"] != nil && ref["namespace"] != gwNS) {
			continue
		}
		conds, _ := pm["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == typ {
				return fmt.Sprint(cm["status"]), fmt.Sprint(cm["reason"]), fmt.Sprint(cm["message"])
			}
		}
	}
	return "", "", "no status from the gateway yet"
}

// listenerCondition is routeCondition for one listener of the Gateway.
func listenerCondition(ctx context.Context, dyn dynamic.Interface, gwNS, gwName, listener, typ string) (string, string, string) {
	o, err := dyn.Resource(gatewayResource).Namespace(gwNS).Get(ctx, gwName, metav1.GetOptions{})
	if err != nil {
		return "", "", err.Error()
	}
	ls, _, _ := unstructured.NestedSlice(o.Object, "status", "listeners")
	for _, l := range ls {
		lm, _ := l.(map[string]any)
		if lm["name"] != listener {
			continue
		}
		conds, _ := lm["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == typ {
				return fmt.Sprint(cm["status"]), fmt.Sprint(cm["reason"]), fmt.Sprint(cm["message"])
			}
		}
	}
	return "", "", "no status for listener " + listener + " yet"
}

func applyObject(t *testing.T, ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, manager string, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if u.GetNamespace() != "" {
		ri = dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: manager, Force: new(true)}); err != nil {
		t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// deployHello runs ./cmd/hello as Deployment and Service hello in ns.
func deployHello(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, img string) {
	t.Helper()
	labels := map[string]string{"app": "hello"}
	podSC, ctrSC := restricted()
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				// The cluster's Prometheus scrapes it (TestSmoke).
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}},
				Spec: corev1.PodSpec{
					SecurityContext: podSC,
					Containers: []corev1.Container{{
						Name: "hello", Image: img, ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
						SecurityContext: ctrSC,
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSmokeGateway checks the edge issue 26's tests use: a route on a host
// answers through the gateway over HTTP; a certificate from skiff-acme
// (http-01 through the gateway) becomes Ready and, referenced from a
// listener across namespaces with a ReferenceGrant, is served for its host
// and verifies against Pebble's root; an unknown host gets the gateway's
// 404; a host the `restricted` listener does not allow is not Accepted.
func TestSmokeGateway(t *testing.T) {
	cfg, cs, reg := e2eEnv(t)
	gw := gatewayFromEnv(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	tag := fmt.Sprintf("t%d", time.Now().UnixNano())
	ns := "skiff-gw-" + tag
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	deployHello(t, ctx, cs, ns, pushTestImage(t, ctx, reg, "hello", tag))
	host := "hello." + tag + ".skiff.test"

	applyObject(t, ctx, dyn, httpRouteResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "hello", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw.name, "namespace": gw.namespace}},
			"hostnames":  []any{host},
			"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "hello", "port": 80}}}},
		},
	})
	poll := func(what string, timeout time.Duration, cond func(context.Context) (bool, string)) {
		t.Helper()
		start := time.Now()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			ok, msg := cond(ctx)
			last = msg
			return ok, nil
		})
		if err != nil {
			t.Fatalf("%s: not within %s; last: %s\n%s", what, timeout, last, describePods(ctx, cs, ns))
		}
		t.Logf("%s (%s)", what, time.Since(start).Round(time.Millisecond))
	}
	poll("route hello Accepted with its refs resolved", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := routeCondition(ctx, dyn, ns, "hello", gw.namespace, gw.name, "Accepted")
		rst, rreason, _ := routeCondition(ctx, dyn, ns, "hello", gw.namespace, gw.name, "ResolvedRefs")
		return st == "True" && rst == "True", fmt.Sprintf("Accepted=%s %s %s; ResolvedRefs=%s %s", st, reason, msg, rst, rreason)
	})
	poll("http://"+host+" answers through the gateway", 2*time.Minute, func(ctx context.Context) (bool, string) {
		code, body, err := getVia(ctx, gw.http, host, nil)
		return err == nil && code == http.StatusOK && strings.Contains(body, "hello from hello-"), fmt.Sprint(code, " ", body, " ", err)
	})
	if code, body, err := getVia(ctx, gw.http, "nobody."+tag+".skiff.test", nil); err != nil || code != http.StatusNotFound || body != "404 page not found\n" {
		t.Errorf("an unknown host: %d %q %v, want the gateway's 404", code, body, err)
	}

	// A certificate from skiff-acme: http-01 through the gateway.
	applyObject(t, ctx, dyn, certificateResource, "skiff-smoke", map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "hello", "namespace": ns},
		"spec": map[string]any{
			"secretName": "hello-tls",
			"dnsNames":   []any{host},
			"issuerRef":  map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": gw.acmeIssuer},
		},
	})
	poll("certificate hello from "+gw.acmeIssuer+" Ready", 3*time.Minute, func(ctx context.Context) (bool, string) {
		err := readyCondition(ctx, dyn.Resource(certificateResource).Namespace(ns), "hello", "Ready")
		return err == nil, fmt.Sprint(err)
	})

	// Serve it: a listener of the Gateway for this host references the
	// Secret in the workload's namespace; Traefik refuses it until a
	// ReferenceGrant there allows it.
	manager := "skiff-smoke-" + tag
	listener := "https-" + tag
	listenerPatch := func(listeners []any) map[string]any {
		return map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": gw.name, "namespace": gw.namespace},
			"spec":     map[string]any{"listeners": listeners},
		}
	}
	applyObject(t, ctx, dyn, gatewayResource, manager, listenerPatch([]any{map[string]any{
		"name": listener, "protocol": "HTTPS", "port": gatewayHTTPSPort, "hostname": host,
		"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{
			map[string]any{"kind": "Secret", "group": "", "name": "hello-tls", "namespace": ns}}},
		"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
	}}))
	t.Cleanup(func() {
		// The same manager applying no listeners removes exactly its own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		applyObject(t, ctx, dyn, gatewayResource, manager, listenerPatch([]any{}))
	})
	poll("listener "+listener+" refused without a ReferenceGrant", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := listenerCondition(ctx, dyn, gw.namespace, gw.name, listener, "ResolvedRefs")
		return st == "False" && reason == "RefNotPermitted", fmt.Sprintf("ResolvedRefs=%s %s %s", st, reason, msg)
	})
	applyObject(t, ctx, dyn, referenceGrantResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": "gateway-reads-hello-tls", "namespace": ns},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": gw.namespace}},
			"to":   []any{map[string]any{"group": "", "kind": "Secret", "name": "hello-tls"}},
		},
	})
	poll("listener "+listener+" programmed with the workload's certificate", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := listenerCondition(ctx, dyn, gw.namespace, gw.name, listener, "ResolvedRefs")
		return st == "True", fmt.Sprintf("ResolvedRefs=%s %s %s", st, reason, msg)
	})
	poll("https://"+host+" verifies against Pebble's root and answers", time.Minute, func(ctx context.Context) (bool, string) {
		code, body, err := getVia(ctx, gw.https, host, gw.acmeRoot)
		return err == nil && code == http.StatusOK && strings.Contains(body, "hello from hello-"), fmt.Sprint(code, " ", body, " ", err)
	})

	// A route to a Service in another namespace, the KEDA HTTP
	// interceptor's (the path to a function at zero pods): refused until a
	// ReferenceGrant in keda allows HTTPRoutes from this namespace. The
	// interceptor, which knows no such host, answers its own "Not Found"
	// (the gateway's 404 says "404 page not found").
	viaHost := "via-interceptor." + tag + ".skiff.test"
	applyObject(t, ctx, dyn, httpRouteResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "via-interceptor", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw.name, "namespace": gw.namespace}},
			"hostnames":  []any{viaHost},
			"rules": []any{map[string]any{"backendRefs": []any{map[string]any{
				"name": "keda-add-ons-http-interceptor-proxy", "namespace": kedaNamespace, "port": 8080}}}},
		},
	})
	poll("route via-interceptor refused without a ReferenceGrant in "+kedaNamespace, time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := routeCondition(ctx, dyn, ns, "via-interceptor", gw.namespace, gw.name, "ResolvedRefs")
		return st == "False" && reason == "RefNotPermitted", fmt.Sprintf("ResolvedRefs=%s %s %s", st, reason, msg)
	})
	grant := "skiff-smoke-" + tag
	applyObject(t, ctx, dyn, referenceGrantResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": grant, "namespace": kedaNamespace},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}},
			"to":   []any{map[string]any{"group": "", "kind": "Service", "name": "keda-add-ons-http-interceptor-proxy"}},
		},
	})
	t.Cleanup(func() {
		_ = dyn.Resource(referenceGrantResource).Namespace(kedaNamespace).Delete(context.Background(), grant, metav1.DeleteOptions{})
	})
	poll("route via-interceptor resolved with the grant", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := routeCondition(ctx, dyn, ns, "via-interceptor", gw.namespace, gw.name, "ResolvedRefs")
		return st == "True", fmt.Sprintf("ResolvedRefs=%s %s %s", st, reason, msg)
	})
	poll("http://"+viaHost+" reaches the interceptor", time.Minute, func(ctx context.Context) (bool, string) {
		code, body, err := getVia(ctx, gw.http, viaHost, nil)
		return err == nil && code == http.StatusNotFound && body == "Not Found\n", fmt.Sprintf("%d %q %v", code, body, err)
	})

	// An Ingress of the gateway's class (no Gateway API needed), with a
	// certificate from skiff-ca: served on the same address, HTTP and HTTPS,
	// and its status carries the gateway's address.
	ingHost := "ingress." + tag + ".skiff.test"
	applyObject(t, ctx, dyn, certificateResource, "skiff-smoke", map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "ingress", "namespace": ns},
		"spec": map[string]any{
			"secretName": "ingress-tls",
			"dnsNames":   []any{ingHost},
			"issuerRef":  map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": gw.caIssuer},
		},
	})
	poll("certificate ingress from "+gw.caIssuer+" Ready", time.Minute, func(ctx context.Context) (bool, string) {
		err := readyCondition(ctx, dyn.Resource(certificateResource).Namespace(ns), "ingress", "Ready")
		return err == nil, fmt.Sprint(err)
	})
	prefix := networkingv1.PathTypePrefix
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &gw.ingressClass,
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{ingHost}, SecretName: "ingress-tls"}},
			Rules: []networkingv1.IngressRule{{Host: ingHost, IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "hello", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}},
			}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("https://"+ingHost+" (an Ingress) verifies against skiff-ca's root and answers", time.Minute, func(ctx context.Context) (bool, string) {
		code, body, err := getVia(ctx, gw.https, ingHost, gw.caRoot)
		return err == nil && code == http.StatusOK && strings.Contains(body, "hello from hello-"), fmt.Sprint(code, " ", body, " ", err)
	})
	if code, body, err := getVia(ctx, gw.http, ingHost, nil); err != nil || code != http.StatusOK {
		t.Errorf("http://%s (an Ingress): %d %q %v", ingHost, code, body, err)
	}
	poll("the Ingress's status has the gateway's address", time.Minute, func(ctx context.Context) (bool, string) {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		lb := ing.Status.LoadBalancer.Ingress
		want, _, _ := net.SplitHostPort(gw.http)
		return len(lb) == 1 && lb[0].IP == want, fmt.Sprintf("%+v", lb)
	})

	// A host outside the restricted listener's *.allowed.skiff.test.
	applyObject(t, ctx, dyn, httpRouteResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "refused", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw.name, "namespace": gw.namespace, "sectionName": "restricted"}},
			"hostnames":  []any{"refused." + tag + ".skiff.test"},
			"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "hello", "port": 80}}}},
		},
	})
	poll("route refused not Accepted by the restricted listener", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := routeCondition(ctx, dyn, ns, "refused", gw.namespace, gw.name, "Accepted")
		return st == "False" && reason == "NoMatchingListenerHostname", fmt.Sprintf("Accepted=%s %s %s", st, reason, msg)
	})
	// ...while a host under it is Accepted and served.
	allowedHost := tag + ".allowed.skiff.test"
	applyObject(t, ctx, dyn, httpRouteResource, "skiff-smoke", map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "allowed", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw.name, "namespace": gw.namespace, "sectionName": "restricted"}},
			"hostnames":  []any{allowedHost},
			"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "hello", "port": 80}}}},
		},
	})
	poll("route allowed Accepted by the restricted listener", time.Minute, func(ctx context.Context) (bool, string) {
		st, reason, msg := routeCondition(ctx, dyn, ns, "allowed", gw.namespace, gw.name, "Accepted")
		return st == "True", fmt.Sprintf("Accepted=%s %s %s", st, reason, msg)
	})
	poll("http://"+allowedHost+" answers through the restricted listener", time.Minute, func(ctx context.Context) (bool, string) {
		code, body, err := getVia(ctx, gw.http, allowedHost, nil)
		return err == nil && code == http.StatusOK && strings.Contains(body, "hello from hello-"), fmt.Sprint(code, " ", body, " ", err)
	})
}
