package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// The edge of the test cluster, the names issue 26's e2e tests rely on
// (docs/testing.md, "The gateway"): a Gateway API implementation (Traefik),
// cert-manager and an ACME server (Pebble) whose DNS sends every name to the
// gateway.
const (
	gatewayNamespace     = "skiff-gateway"
	gatewayName          = "skiff"
	certManagerNamespace = "cert-manager"
	acmeNamespace        = "skiff-acme"
	// Fixed Service addresses: the gateway's is what tests on the host dial.
	// From the Service range's static band (its first 16 addresses, which
	// the API server hands out at random only when the rest is full), so no
	// Service created earlier can hold them.
	gatewayIP = "198.19.0.11"
	pebbleIP  = "198.19.0.12"
	acmeDNSIP = "198.19.0.13"
	// Traefik's entryPoints; a Gateway listener is served by the entryPoint
	// with its port. The Service maps 80 and 443 to them.
	gatewayHTTPPort  = 8000
	gatewayHTTPSPort = 8443
	acmeIssuer       = "skiff-acme"
	ingressClass     = "traefik" // Traefik serves Ingresses of this class too
	caIssuer         = "skiff-ca"
	// restrictedHostname is the only hostname the `restricted` listener takes.
	restrictedHostname = "*.allowed.skiff.test"
	// The https listener's own certificate (from skiff-ca), for hosts that
	// bring none.
	defaultCertSecret = "skiff-gateway-default"
	defaultCertHost   = "*.skiff.test"
)

//go:embed manifests/gateway.yaml manifests/issuers.yaml
var manifests embed.FS

// edgeBinaries are the gateway's, cert-manager's and Pebble's commands.
type edgeBinaries struct {
	traefik                 string
	certManager, acmeSolver string // tools/certmanager's own mains
	pebble, challtestsrv    string
}

// acmeRootFile is where up writes Pebble's root certificate (random per
// start of Pebble): what certificates from skiff-acme chain to.
func (c *cluster) acmeRootFile() string { return c.state("gateway", "acme-root.pem") }

// caRootFile is skiff-ca's certificate.
func (c *cluster) caRootFile() string { return filepath.Join(c.pkiDir(), "gateway-ca.crt") }

// manifestValues fills the templates in manifests/.
type manifestValues struct {
	GatewayNS, GatewayName, CertManagerNS, ACMENS string
	GatewayIP, PebbleIP, DNSIP                    string
	HTTPPort, HTTPSPort                           int
	RestrictedHostname, IngressClass              string
	DefaultCertSecret, DefaultCertHost            string
	ACMEIssuer, CAIssuer                          string
	TraefikImage, CertManagerImage, SolverImage   string
	PebbleImage, ChalltestsrvImage                string
	PebbleCert, PebbleKey, PebbleCABundle         string
	CACert, CAKey                                 string
}

// renderManifest executes manifests/<name> and decodes its documents.
func renderManifest(name string, v manifestValues) ([]*unstructured.Unstructured, error) {
	src, err := manifests.ReadFile("manifests/" + name)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
		},
	}).Parse(string(src))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, err
	}
	return decodeObjects(buf.Bytes())
}

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// crdFiles reads the CRDs in dir (every *.yaml file).
func crdFiles(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s", dir)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		o, err := decodeObjects(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, obj := range o {
			if obj.GetKind() != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s: a %s, not a CRD", f, obj.GetKind())
			}
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

var (
	gatewayResource      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	gatewayClassResource = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	clusterIssuerRes     = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
	certificateResource  = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
)

// installGateway installs the Gateway API CRDs, Traefik with the Gateway
// `skiff`, cert-manager's controller, Pebble, and the ClusterIssuers
// skiff-acme and skiff-ca; waits until the gateway is Programmed, both
// issuers are Ready and the gateway answers on its address from this
// host; and writes Pebble's root certificate to acmeRootFile.
func (c *cluster) installGateway(ctx context.Context, eb edgeBinaries, kubelet *procRecord) error {
	begin := time.Now()
	img := func(name, version string) string {
		return registryAddr + "/skiff-cluster/" + name + ":" + version
	}
	v := manifestValues{
		GatewayNS: gatewayNamespace, GatewayName: gatewayName, CertManagerNS: certManagerNamespace, ACMENS: acmeNamespace,
		GatewayIP: gatewayIP, PebbleIP: pebbleIP, DNSIP: acmeDNSIP,
		HTTPPort: gatewayHTTPPort, HTTPSPort: gatewayHTTPSPort,
		RestrictedHostname: restrictedHostname, IngressClass: ingressClass,
		DefaultCertSecret: defaultCertSecret, DefaultCertHost: defaultCertHost,
		ACMEIssuer: acmeIssuer, CAIssuer: caIssuer,
		TraefikImage:      img("traefik", traefikVersion),
		CertManagerImage:  img("cert-manager-controller", certManagerVersion),
		SolverImage:       img("cert-manager-acmesolver", certManagerVersion),
		PebbleImage:       img("pebble", pebbleVersion),
		ChalltestsrvImage: img("pebble-challtestsrv", pebbleVersion),
	}
	for _, bi := range []binaryImage{
		{Ref: v.TraefikImage, Binary: eb.traefik, User: "65532"},
		{Ref: v.CertManagerImage, Binary: eb.certManager, User: "65532"},
		{Ref: v.SolverImage, Binary: eb.acmeSolver, User: "65532"},
		{Ref: v.PebbleImage, Binary: eb.pebble, User: "65532"},
		{Ref: v.ChalltestsrvImage, Binary: eb.challtestsrv, User: "65532"},
	} {
		if err := pushImage(ctx, bi); err != nil {
			return err
		}
	}
	pki := c.pkiDir()
	for dst, file := range map[*string]string{
		&v.PebbleCert: "pebble.crt", &v.PebbleKey: "pebble.key",
		&v.CACert: "gateway-ca.crt", &v.CAKey: "gateway-ca.key",
		&v.PebbleCABundle: "ca.crt",
	} {
		data, err := os.ReadFile(filepath.Join(pki, file))
		if err != nil {
			return err
		}
		*dst = string(data)
	}
	clusterCA := []byte(v.PebbleCABundle)
	v.PebbleCABundle = base64.StdEncoding.EncodeToString(clusterCA)

	dyn, cs, mapper, err := c.applyClients()
	if err != nil {
		return err
	}

	// The CRDs, from the modules the binaries are built from: the Gateway
	// API's standard channel at the version Traefik is built against.
	var crds []*unstructured.Unstructured
	for _, src := range []struct{ tools, module, dir string }{
		{"tools/traefik", "sigs.k8s.io/gateway-api", "config/crd/standard"},
		{"tools/certmanager", "github.com/cert-manager/cert-manager", "deploy/crds"},
	} {
		dir, err := c.moduleDir(ctx, src.tools, src.module)
		if err != nil {
			return err
		}
		objs, err := crdFiles(filepath.Join(dir, src.dir))
		if err != nil {
			return err
		}
		crds = append(crds, objs...)
	}
	var names []string
	for _, o := range crds {
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
		names = append(names, o.GetName())
	}
	if err := c.waitFor(ctx, "the Gateway API and cert-manager CRDs to be established", nil, 60*time.Second, func(ctx context.Context) error {
		return crdsEstablished(ctx, dyn, names)
	}); err != nil {
		return err
	}
	mapper.Reset()

	objs, err := renderManifest("gateway.yaml", v)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
	}
	deploys := map[string]string{gatewayNamespace: "traefik", certManagerNamespace: "cert-manager", acmeNamespace: "pebble"}
	for ns, name := range deploys {
		if err := c.waitFor(ctx, name+" to be available", kubelet, 180*time.Second, func(ctx context.Context) error {
			return deploymentsAvailable(ctx, cs, ns, []string{name})
		}); err != nil {
			return fmt.Errorf("%w\npods in %s:\n%s", err, ns, podReport(ctx, cs, ns))
		}
	}

	issuers, err := renderManifest("issuers.yaml", v)
	if err != nil {
		return err
	}
	for _, o := range issuers {
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
	}
	// skiff-acme is Ready once its account is registered with Pebble
	// (cert-manager trusts Pebble through caBundle); the default
	// certificate proves skiff-ca issues; the Gateway is Programmed once
	// Traefik loaded it with that certificate.
	if err := c.waitFor(ctx, "the issuers, the gateway's certificate and the Gateway", kubelet, 120*time.Second, func(ctx context.Context) error {
		for _, name := range []string{acmeIssuer, caIssuer} {
			if err := readyCondition(ctx, dyn.Resource(clusterIssuerRes), name, "Ready"); err != nil {
				return err
			}
		}
		if err := readyCondition(ctx, dyn.Resource(certificateResource).Namespace(gatewayNamespace), defaultCertSecret, "Ready"); err != nil {
			return err
		}
		if err := readyCondition(ctx, dyn.Resource(gatewayClassResource), "traefik", "Accepted"); err != nil {
			return err
		}
		return readyCondition(ctx, dyn.Resource(gatewayResource).Namespace(gatewayNamespace), gatewayName, "Programmed")
	}); err != nil {
		return fmt.Errorf("%w\npods in %s:\n%s\npods in %s:\n%s", err,
			certManagerNamespace, podReport(ctx, cs, certManagerNamespace), gatewayNamespace, podReport(ctx, cs, gatewayNamespace))
	}

	root, err := pebbleRoot(ctx, clusterCA)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.acmeRootFile()), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(c.acmeRootFile(), root, 0o644); err != nil {
		return err
	}
	// Tests on this host reach the gateway at its Service address; an
	// unknown host gets Traefik's 404.
	if err := c.waitFor(ctx, "the gateway to answer on "+gatewayIP+":80", kubelet, 30*time.Second, func(ctx context.Context) error {
		return gatewayAnswers(ctx, "http://"+gatewayIP+":80/", "no-route.skiff.test", http.StatusNotFound)
	}); err != nil {
		return err
	}
	c.logf("installed the Gateway API CRDs, Traefik %s (Gateway %s/%s at %s), cert-manager %s and Pebble %s in %s",
		traefikVersion, gatewayNamespace, gatewayName, gatewayIP, certManagerVersion, pebbleVersion, time.Since(begin).Round(time.Second))
	return nil
}

// readyCondition fails unless the object has condition typ with status True;
// the error carries the condition's reason and message.
func readyCondition(ctx context.Context, ri dynamic.ResourceInterface, name, typ string) error {
	o, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			if m["status"] == "True" {
				return nil
			}
			return fmt.Errorf("%s %s is not %s: %v: %v", o.GetKind(), name, typ, m["reason"], m["message"])
		}
	}
	return fmt.Errorf("%s %s has no %s condition yet", o.GetKind(), name, typ)
}

// pebbleRoot fetches the root certificate Pebble made at its start from its
// management API, which serves TLS with a certificate from the cluster CA.
func pebbleRoot(ctx context.Context, clusterCA []byte) ([]byte, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clusterCA) {
		return nil, errors.New("no certificate in the cluster CA file")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "pebble." + acmeNamespace + ".svc"},
	}}
	url := "https://" + pebbleIP + ":15000/roots/0"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching Pebble's root: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(body) {
		return nil, fmt.Errorf("GET %s: no PEM certificate in the answer", url)
	}
	return body, nil
}

// gatewayAnswers sends GET url with the Host header host and wants status.
func gatewayAnswers(ctx context.Context, url, host string, status int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("GET %s (Host %s): %s, want %d", url, host, resp.Status, status)
	}
	return nil
}
