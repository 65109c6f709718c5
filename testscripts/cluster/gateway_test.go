package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func testValues() manifestValues {
	return manifestValues{
		GatewayNS: gatewayNamespace, GatewayName: gatewayName, CertManagerNS: certManagerNamespace, ACMENS: acmeNamespace,
		GatewayIP: gatewayIP, PebbleIP: pebbleIP, DNSIP: acmeDNSIP,
		HTTPPort: gatewayHTTPPort, HTTPSPort: gatewayHTTPSPort,
		RestrictedHostname: restrictedHostname, IngressClass: ingressClass, DefaultCertSecret: defaultCertSecret, DefaultCertHost: defaultCertHost,
		ACMEIssuer: acmeIssuer, CAIssuer: caIssuer,
		TraefikImage: "r/traefik:1", CertManagerImage: "r/cm:1", SolverImage: "r/solver:1",
		PebbleImage: "r/pebble:1", ChalltestsrvImage: "r/chall:1",
		PebbleCert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", PebbleKey: "k1\nk2\n",
		PebbleCABundle: "Y2E=", CACert: "c1\nc2\n", CAKey: "k\n",
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// The names docs/testing.md promises skiff's e2e tests.
func TestGatewayManifestContract(t *testing.T) {
	objs, err := renderManifest("gateway.yaml", testValues())
	if err != nil {
		t.Fatal(err)
	}
	gw := find(objs, "Gateway", "skiff")
	if gw == nil || gw.GetNamespace() != "skiff-gateway" {
		t.Fatalf("no Gateway skiff in skiff-gateway")
	}
	if cls, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName"); cls != "traefik" {
		t.Errorf("gatewayClassName %q, want traefik", cls)
	}
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	want := map[string]struct {
		proto    string
		port     int64
		hostname string
	}{
		"http":       {"HTTP", 8000, ""},
		"https":      {"HTTPS", 8443, ""},
		"restricted": {"HTTP", 8000, "*.allowed.skiff.test"},
	}
	if len(listeners) != len(want) {
		t.Fatalf("%d listeners, want %d", len(listeners), len(want))
	}
	for _, l := range listeners {
		m := l.(map[string]any)
		w, ok := want[m["name"].(string)]
		if !ok {
			t.Errorf("unexpected listener %v", m["name"])
			continue
		}
		host, _ := m["hostname"].(string)
		if m["protocol"] != w.proto || fmt.Sprint(m["port"]) != fmt.Sprint(w.port) || host != w.hostname {
			t.Errorf("listener %v: %v %v %q, want %v %v %q", m["name"], m["protocol"], m["port"], host, w.proto, w.port, w.hostname)
		}
		if from, _, _ := unstructured.NestedString(m, "allowedRoutes", "namespaces", "from"); from != "All" {
			t.Errorf("listener %v allows routes from %q, want All", m["name"], from)
		}
	}
	if find(objs, "IngressClass", "traefik") == nil {
		t.Error("no IngressClass traefik")
	}
	svc := find(objs, "Service", "traefik")
	if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != gatewayIP {
		t.Errorf("the gateway's Service has clusterIP %q, want %s", ip, gatewayIP)
	}
	// Every container runs an image built here.
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		ctrs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range ctrs {
			if img := c.(map[string]any)["image"]; img == "" || img == nil {
				t.Errorf("deployment %s: container without image", o.GetName())
			}
		}
	}
	// The PEM blocks survive the template's indentation.
	sec := find(objs, "Secret", "pebble-tls")
	if crt, _, _ := unstructured.NestedString(sec.Object, "stringData", "tls.crt"); crt != testValues().PebbleCert {
		t.Errorf("pebble-tls tls.crt = %q", crt)
	}
}

func TestIssuersManifest(t *testing.T) {
	objs, err := renderManifest("issuers.yaml", testValues())
	if err != nil {
		t.Fatal(err)
	}
	acme := find(objs, "ClusterIssuer", "skiff-acme")
	if acme == nil || find(objs, "ClusterIssuer", "skiff-ca") == nil {
		t.Fatal("want ClusterIssuers skiff-acme and skiff-ca")
	}
	solvers, _, _ := unstructured.NestedSlice(acme.Object, "spec", "acme", "solvers")
	refs, _, _ := unstructured.NestedSlice(solvers[0].(map[string]any), "http01", "gatewayHTTPRoute", "parentRefs")
	ref := refs[0].(map[string]any)
	if ref["name"] != "skiff" || ref["namespace"] != "skiff-gateway" || ref["sectionName"] != "http" {
		t.Errorf("the http-01 solver attaches to %v, want skiff-gateway/skiff section http", ref)
	}
}

func TestSourceKeyFollowsSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("a/main.go", "package main\n")
	k1, err := sourceKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	write("README", "not source")
	if k, _ := sourceKey(dir); k != k1 {
		t.Errorf("a non-Go file changed the key")
	}
	write("a/main.go", "package main // changed\n")
	if k, _ := sourceKey(dir); k == k1 || len(k) != 8 {
		t.Errorf("key %q after a change, was %q", k, k1)
	}
}

// env prints the gateway's names (the contract in docs/testing.md).
func TestEnvPrintsGateway(t *testing.T) {
	var out, errOut strings.Builder
	c := newCluster(Config{StateDir: "/state"}, &out, &errOut)
	if err := c.printEnv(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SKIFF_TEST_GATEWAY=skiff-gateway/skiff ",
		"SKIFF_TEST_GATEWAY_HTTP=198.19.0.11:80 ",
		"SKIFF_TEST_GATEWAY_HTTPS=198.19.0.11:443\n",
		"SKIFF_TEST_CLUSTER_ISSUER=skiff-acme ",
		"SKIFF_TEST_ACME_ROOT=/state/gateway/acme-root.pem ",
		"SKIFF_TEST_CA_ISSUER=skiff-ca ",
		"SKIFF_TEST_CA_ROOT=/state/pki/gateway-ca.crt\n",
		"SKIFF_TEST_INGRESS_CLASS=traefik\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("env lacks %q:\n%s", want, out.String())
		}
	}
}
