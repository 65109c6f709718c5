package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	if err := writePKI(dir); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))

	// Serving certs verify for the names clients use.
	for _, tc := range []struct{ name, host string }{
		{"apiserver", nodeIP},
		{"apiserver", apiServiceIP},
		{"apiserver", "kubernetes.default.svc." + clusterDomain},
		{"kubelet", nodeIP},
	} {
		cert := readCert(t, filepath.Join(dir, tc.name+".crt"))
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s for %s: %v", tc.name, tc.host, err)
		}
	}
	// Client certs carry the identities RBAC and the Node authorizer expect.
	for name, wantCN := range map[string]string{
		"kubelet":    "system:node:" + nodeName,
		"kube-proxy": "system:kube-proxy",
		"admin":      "skiff-admin",
	} {
		cert := readCert(t, filepath.Join(dir, name+".crt"))
		if cert.Subject.CommonName != wantCN {
			t.Errorf("%s: CN %q, want %q", name, cert.Subject.CommonName, wantCN)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s as a client: %v", name, err)
		}
	}
	// The front proxy's client certificate chains to its own CA only.
	proxyRoots := x509.NewCertPool()
	proxyRoots.AddCert(readCert(t, filepath.Join(dir, "front-proxy-ca.crt")))
	proxy := readCert(t, filepath.Join(dir, "front-proxy-client.crt"))
	if _, err := proxy.Verify(x509.VerifyOptions{Roots: proxyRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("front-proxy-client: %v", err)
	}
	if _, err := proxy.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("front-proxy-client verifies against the cluster CA; it must have a CA of its own")
	}
	for _, f := range []string{"sa.key", "sa.pub", "ca.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
