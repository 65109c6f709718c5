//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/target"
)

// edge is the test cluster's gateway, as `ci.sh env` names it
// (docs/testing.md).
type edge struct {
	namespace, name string
	http, https     string // ip:port to dial, Host and SNI set
	roots           *x509.CertPool
	rootsFile       string
	issuer          string
}

func needEdge(t *testing.T) *edge {
	t.Helper()
	gw := os.Getenv("SKIFF_TEST_GATEWAY")
	if gw == "" {
		t.Skip("no gateway in the test cluster: SKIFF_TEST_GATEWAY is unset (`ci.sh env` prints it when the cluster runs Traefik, cert-manager and Pebble)")
	}
	e := &edge{http: os.Getenv("SKIFF_TEST_GATEWAY_HTTP"), https: os.Getenv("SKIFF_TEST_GATEWAY_HTTPS"),
		rootsFile: os.Getenv("SKIFF_TEST_ACME_ROOT"), issuer: os.Getenv("SKIFF_TEST_CLUSTER_ISSUER")}
	var ok bool
	if e.namespace, e.name, ok = strings.Cut(gw, "/"); !ok || e.http == "" || e.https == "" || e.rootsFile == "" || e.issuer == "" {
		t.Fatalf("SKIFF_TEST_GATEWAY=%q needs SKIFF_TEST_GATEWAY_HTTP, _HTTPS, SKIFF_TEST_ACME_ROOT and SKIFF_TEST_CLUSTER_ISSUER too", gw)
	}
	pem, err := os.ReadFile(e.rootsFile)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	if !e.roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", e.rootsFile)
	}
	return e
}

// get sends GET path to host through the gateway: over HTTPS (verified
// against the ACME root, SNI host) or plain HTTP.
func (e *edge) get(ctx context.Context, secure bool, host, path string) (int, string, error) {
	addr, scheme := e.http, "http"
	if secure {
		addr, scheme = e.https, "https"
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: e.roots, ServerName: host},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestExpose is issue 26 on the real cluster (Traefik on Gateway API,
// cert-manager, Pebble): a service and a scale-to-zero Go function exposed
// on custom hosts over HTTPS (certificates from the ACME issuer, served on
// the listeners deploy adds to the Gateway, verified against Pebble's
// root); the function at zero pods woken by 20 requests
// at once to its public URL, all answered; an unknown host gets the
// gateway's 404; `-e staging` exposes on staging's domain; a host the
// listener refuses fails the deploy with the gateway's reason and leaves
// nothing exposed; `skiff render` applies in a server-side dry run; delete
// removes routes, certificates and their Secrets.
func TestExpose(t *testing.T) {
	e := needEdge(t)
	c := needCluster(t)
	ctx := context.Background()
	ns := c.restrictedNamespace(t, "e2e-expose")
	staging := c.restrictedNamespace(t, "e2e-expose-stg")
	b := make([]byte, 3)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	domain := tag + ".skiff.test"
	helloHost := "hello.fn-" + tag + ".skiff.test"
	frontHost := "front.shop." + domain

	// What KEDA's admin does once per namespace: let its routes reach the
	// interceptor (docs/expose.md).
	c.grantInterceptor(t, ns)

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "front", "--kind", "service", "--lang", "go")
	// On an Ingress instead of the Gateway, where the cluster serves an
	// IngressClass.
	ingressClass := os.Getenv("SKIFF_TEST_INGRESS_CLASS")
	legacyHost := "legacy.in-" + tag + ".skiff.test"
	if ingressClass != "" {
		c.mustSkiff(t, root, "add", "legacy", "--kind", "function", "--lang", "go")
		replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: legacy\n", "  - name: legacy\n    expose: {host: "+legacyHost+", ingress: {className: "+ingressClass+"}}\n")
	}
	manifest := filepath.Join(root, "skiff.yaml")
	if ingressClass != "" {
		// The Ingress controller's pods, which its NetworkPolicy admits:
		// Traefik serves both, from the Gateway's namespace.
		gwNS, _, _ := strings.Cut(os.Getenv("SKIFF_TEST_GATEWAY"), "/")
		replaceInFile(t, manifest, "network: {policy: on}\n", "network: {policy: on, gatewayNamespace: "+gwNS+"}\n")
	}
	replaceInFile(t, manifest, "  - name: hello\n", "  - name: hello\n    scale: {min: 0, max: 3, idle: 8s, concurrency: 5}\n    expose: {host: "+helloHost+"}\n")
	replaceInFile(t, manifest, "  - name: front\n", "  - name: front\n    expose: true\n")
	appendFile(t, manifest, fmt.Sprintf(`domain: %s
gateway: {name: %s, namespace: %s, addListeners: true}
tls: {issuer: %s, kind: ClusterIssuer}
environments:
  staging:
    namespace: %s
    domain: staging-%s
    tls: off
  refused:
    namespace: %s
    gateway: {name: %s, namespace: %s, listener: restricted}
    tls: off
`, domain, e.name, e.namespace, e.issuer, staging, domain, staging, e.name, e.namespace))

	// render: what deploy applies, valid for the API server (the Gateway
	// API and cert-manager CRDs' schemas) in a server-side dry run.
	c.dryRunApply(t, ns, c.mustSkiff(t, root, "render"))

	// deploy waits for the routes Accepted and the certificates Ready.
	start := time.Now()
	out := c.mustSkiff(t, root, "deploy", "--timeout", "5m", "-o", "json")
	t.Logf("deploy of the exposed workloads (ACME certificates through the gateway): %s", time.Since(start).Round(time.Second))
	var deployed []struct{ Workload, URL string }
	if err := json.Unmarshal([]byte(out), &deployed); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, out)
	}
	urls := map[string]string{}
	for _, d := range deployed {
		urls[d.Workload] = d.URL
	}
	if urls["front"] != "https://"+frontHost+"/" || urls["hello"] != "https://"+helloHost+"/" {
		t.Errorf("deploy's URLs = %v", urls)
	}
	for _, w := range []string{"front", "hello"} {
		cert, err := c.kc.Dynamic.Resource(target.Certificates).Namespace(ns).Get(ctx, w, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("certificate %s after deploy: %v", w, err)
		}
		if !conditionTrue(cert, "Ready") {
			t.Errorf("certificate %s is not Ready after deploy: %v", w, cert.Object["status"])
		}
	}

	// gateway.addListeners: deploy added a listener per host to the
	// Gateway, serving the workload's certificate (which skiff's
	// ReferenceGrant lets it read).
	listeners := e.listeners(t, c)
	for _, w := range []string{"front", "hello"} {
		if !slices.Contains(listeners, "skiff-"+ns+"-"+w) {
			t.Errorf("the Gateway's listeners after deploy: %v, want skiff-%s-%s", listeners, ns, w)
		}
	}

	// HTTPS through the gateway, verified against Pebble's root.
	waitFor(t, 2*time.Minute, "front over HTTPS", func() bool {
		code, body, err := e.get(ctx, true, frontHost, "/")
		return err == nil && code == 200 && strings.Contains(body, `"service":"front"`)
	})
	out, errOut, code := c.skiffIn(t, root, "invoke", "front", "--public", "--path", "/items", "--cacert", e.rootsFile, "--connect-to", e.https)
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("invoke --public: exit %d\n%s\n%s", code, out, errOut)
	}
	// Without the issuer's root, invoke refuses the certificate.
	if _, errOut, code := c.skiffIn(t, root, "invoke", "front", "--public", "--connect-to", e.https); code != 1 || !strings.Contains(errOut, "--cacert") {
		t.Errorf("invoke --public without --cacert: exit %d\n%s", code, errOut)
	}
	e.measureLatency(t, c, ns, frontHost)

	// The Ingress: HTTPS with its own certificate from the issuer.
	if ingressClass != "" {
		if urls["legacy"] != "https://"+legacyHost+"/" {
			t.Errorf("deploy's URL of legacy = %q", urls["legacy"])
		}
		waitFor(t, 2*time.Minute, "legacy over HTTPS through its Ingress", func() bool {
			code, body, err := e.get(ctx, true, legacyHost, "/?name=Ingress")
			return err == nil && code == 200 && strings.Contains(body, "Hello, Ingress!")
		})
	} else {
		t.Log("SKIFF_TEST_INGRESS_CLASS is unset: the Ingress path is not tested")
	}

	// An unknown host: the gateway's 404.
	if code, body, err := e.get(ctx, false, "nobody-"+tag+".skiff.test", "/"); err != nil || code != 404 {
		t.Errorf("unknown host: %d %q %v, want 404", code, body, err)
	}

	// status: the URL, Ready; doctor: the edge serves both hosts.
	out, errOut, code = c.skiffIn(t, root, "status", "-o", "json")
	var sts []struct{ Workload, State, URL string }
	if err := json.Unmarshal([]byte(out), &sts); err != nil || code != 0 {
		t.Fatalf("status: exit %d %v\n%s\n%s", code, err, out, errOut)
	}
	for _, s := range sts {
		if s.URL != urls[s.Workload] || (s.State != "Ready" && s.State != "Idle") {
			t.Errorf("status of %s: %+v", s.Workload, s)
		}
	}
	out, _, _ = c.skiffIn(t, root, "doctor", "-o", "json")
	var checks []struct{ Check, Status, Detail string }
	json.Unmarshal([]byte(out), &checks)
	for _, ch := range checks {
		if ch.Check == "edge" && (ch.Status != "ok" || !strings.Contains(ch.Detail, "serves "+frontHost)) {
			t.Errorf("doctor's edge check: %+v", ch)
		}
	}

	// The function at zero pods, woken by 20 requests at once to its
	// public URL: the interceptor holds them, every one is answered.
	c.waitIdle(t, root, ns)
	start = time.Now()
	atOnce(t, 20, func(i int) error {
		code, body, err := e.get(ctx, true, helloHost, fmt.Sprintf("/?name=Edge%d", i))
		if err == nil && (code != 200 || !strings.Contains(body, fmt.Sprintf("Hello, Edge%d!", i))) {
			err = fmt.Errorf("request %d answered %d %q", i, code, body)
		}
		return err
	})
	t.Logf("20 HTTPS requests to a function at zero pods through the gateway answered in %s", time.Since(start).Round(time.Millisecond))

	// -e staging: front on staging's domain, plain HTTP (tls: off).
	stagingHost := "front.shop.staging-" + domain
	out = c.mustSkiff(t, root, "deploy", "-e", "staging", "front", "--timeout", "3m", "-o", "json")
	if !strings.Contains(out, `"url": "http://`+stagingHost+`/"`) {
		t.Errorf("deploy -e staging: %s", out)
	}
	waitFor(t, time.Minute, "front on staging's host", func() bool {
		code, body, err := e.get(ctx, false, stagingHost, "/")
		return err == nil && code == 200 && strings.Contains(body, `"service":"front"`)
	})
	c.mustSkiff(t, root, "delete", "-e", "staging", "front")

	// A host the `restricted` listener does not allow: the first deploy
	// fails with the gateway's reason, and nothing stays exposed.
	out, errOut, code = c.skiffIn(t, root, "deploy", "-e", "refused", "front", "--timeout", "3m")
	if code != 1 || !strings.Contains(errOut, "NoMatchingListenerHostname") || !strings.Contains(errOut, "refused the route of front") {
		t.Errorf("deploy on a listener that refuses the host: exit %d\n%s\n%s", code, out, errOut)
	}
	if list, err := c.kc.Dynamic.Resource(target.HTTPRoutes).Namespace(staging).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Errorf("after the refused first deploy: %v, %d HTTPRoutes left", err, len(list.Items))
	}

	// delete takes the routes and the certificates with the releases.
	c.mustSkiff(t, root, "delete", "--all")
	for _, gvr := range []schema.GroupVersionResource{target.HTTPRoutes, target.Certificates, target.ReferenceGrants} {
		list, err := c.kc.Dynamic.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("after delete: %s: %v, %d left", gvr.Resource, err, len(list.Items))
		}
	}
	for _, sec := range []string{"front-tls", "hello-tls"} {
		if _, err := c.kc.Clientset.CoreV1().Secrets(ns).Get(ctx, sec, metav1.GetOptions{}); err == nil {
			t.Errorf("after delete: the certificate's Secret %s is left", sec)
		}
	}
	if listeners := e.listeners(t, c); slices.ContainsFunc(listeners, func(l string) bool { return strings.HasPrefix(l, "skiff-"+ns+"-") }) {
		t.Errorf("after delete, the Gateway still has skiff's listeners: %v", listeners)
	}
	waitFor(t, time.Minute, "front's host to be gone from the gateway", func() bool {
		code, _, err := e.get(ctx, false, frontHost, "/")
		return err == nil && code == 404
	})
}

// grantInterceptor lets the HTTPRoutes of ns reach the KEDA HTTP add-on's
// interceptor, as the admin of KEDA's namespace would; removed after the
// test.
func (c *cluster) grantInterceptor(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	g := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": "skiff-routes-from-" + ns, "namespace": "keda"},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}},
			"to":   []any{map[string]any{"group": "", "kind": "Service", "name": "keda-add-ons-http-interceptor-proxy"}},
		},
	}}
	if _, err := c.kc.Dynamic.Resource(target.ReferenceGrants).Namespace("keda").Create(ctx, g, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.kc.Dynamic.Resource(target.ReferenceGrants).Namespace("keda").Delete(context.Background(), g.GetName(), metav1.DeleteOptions{})
	})
}

// listeners lists the names of the Gateway's listeners.
func (e *edge) listeners(t *testing.T, c *cluster) []string {
	t.Helper()
	gw, err := c.kc.Dynamic.Resource(target.Gateways).Namespace(e.namespace).Get(context.Background(), e.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	var names []string
	for _, l := range ls {
		if lm, _ := l.(map[string]any); lm != nil {
			names = append(names, fmt.Sprint(lm["name"]))
		}
	}
	return names
}

// conditionTrue reports whether o's status condition typ is True.
func conditionTrue(o *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, cd := range conds {
		if m, _ := cd.(map[string]any); m["type"] == typ {
			return m["status"] == "True"
		}
	}
	return false
}

// dryRunApply applies every object of a multi-document YAML to ns in a
// server-side dry run: the API server validates each against its schema
// (the CRDs' for HTTPRoutes and Certificates) and changes nothing.
func (c *cluster) dryRunApply(t *testing.T, ns, manifests string) {
	t.Helper()
	ctx := context.Background()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.kc.Clientset.Discovery()))
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	kinds := map[string]int{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("render printed YAML that does not parse: %v\n%s", err, doc)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		m, err := mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		data, _ := json.Marshal(obj)
		if _, err := c.kc.Dynamic.Resource(m.Resource).Namespace(ns).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "e2e-dry-run", DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("server-side dry run of %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	for _, k := range []string{"HTTPRoute", "Certificate", "ReferenceGrant", "InterceptorRoute"} {
		if kinds[k] == 0 {
			t.Errorf("render printed no %s (kinds: %v)", k, kinds)
		}
	}
}

// appendFile appends text to file on a line of its own (skiff.yaml edits).
func appendFile(t *testing.T, file, text string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, append(bytes.TrimRight(b, "\n"), []byte("\n"+text)...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// measureLatency logs the gateway's added latency (docs/benchmarks.md):
// p50 and p99 of 300 sequential GETs of front on kept-alive connections,
// straight to its Service's cluster IP (the host reaches it through
// kube-proxy), and through the gateway over HTTP and HTTPS.
func (e *edge) measureLatency(t *testing.T, c *cluster, ns, host string) {
	t.Helper()
	ctx := context.Background()
	svc, err := c.kc.Clientset.CoreV1().Services(ns).Get(ctx, "front", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	direct := fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	client := func(addr string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: e.roots, ServerName: host},
		}}
	}
	for _, m := range []struct{ what, addr, url string }{
		{"straight to the Service", direct, "http://" + host + "/"},
		{"through the gateway, HTTP", e.http, "http://" + host + "/"},
		{"through the gateway, HTTPS", e.https, "https://" + host + "/"},
	} {
		cl := client(m.addr)
		var ds []time.Duration
		for i := range 310 {
			start := time.Now()
			resp, err := cl.Get(m.url)
			if err != nil {
				t.Fatalf("%s: %v", m.what, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s", m.what, resp.Status)
			}
			if i >= 10 { // the first connections warm up
				ds = append(ds, time.Since(start))
			}
		}
		slices.Sort(ds)
		t.Logf("latency %s: p50 %s, p99 %s (%d requests)", m.what, ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)*99/100].Round(time.Microsecond), len(ds))
	}
}
