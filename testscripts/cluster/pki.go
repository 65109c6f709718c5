package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certSpec describes one leaf certificate signed by one of the cluster's CAs.
type certSpec struct {
	name   string // file name stem in the pki dir
	ca     string // the signing CA's stem: "ca" unless set
	cn     string
	orgs   []string
	server bool
	client bool
	ips    []string
	dns    []string
}

// certSpecs lists every leaf the cluster needs. Client identities follow the
// names the API server's bootstrap RBAC policy and the Node authorizer expect.
func certSpecs() []certSpec {
	return []certSpec{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			ips: []string{"127.0.0.1", nodeIP, apiServiceIP},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc." + clusterDomain}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{name: "kubelet", cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}, server: true, client: true,
			ips: []string{nodeIP, "127.0.0.1"}, dns: []string{nodeName, "localhost"}},
		{name: "admin", cn: "skiff-admin", orgs: []string{"system:masters"}, client: true},
		{name: "controller-manager", cn: "system:kube-controller-manager", client: true},
		{name: "scheduler", cn: "system:kube-scheduler", client: true},
		{name: "kube-proxy", cn: "system:kube-proxy", client: true},
		// The aggregation layer: the API server proves itself to extension
		// API servers (KEDA's metrics adapter) with this client certificate,
		// from a CA of its own so no other client can pass as the front proxy.
		{name: "front-proxy-client", ca: "front-proxy-ca", cn: "front-proxy-client", client: true},
		// nats-server's TLS for tls:// clients of the bus.
		{name: "nats", cn: "nats", server: true,
			dns: []string{"nats.nats.svc", "nats.nats.svc." + clusterDomain}},
		// Pebble's ACME and management endpoints (cert-manager trusts the
		// cluster CA for them through the ClusterIssuer's caBundle).
		{name: "pebble", cn: "pebble", server: true, ips: []string{pebbleIP},
			dns: []string{"pebble." + acmeNamespace + ".svc", "pebble." + acmeNamespace + ".svc." + clusterDomain}},
	}
}

// caNames lists the CAs writePKI creates. gateway-ca is the key pair of
// the ClusterIssuer skiff-ca.
func caNames() []string { return []string{"ca", "front-proxy-ca", "gateway-ca"} }

// writePKI creates a fresh CA, the leaf certificates and the service
// account signing key in dir.
func writePKI(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	type authority struct {
		cert *x509.Certificate
		key  crypto.Signer
	}
	cas := map[string]authority{}
	for _, name := range caNames() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "skiff-test-cluster-" + name},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		if err := writeCertKey(dir, name, der, key); err != nil {
			return err
		}
		cas[name] = authority{cert, key}
	}
	for _, s := range certSpecs() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			DNSNames:     s.dns,
		}
		for _, ip := range s.ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		if s.server {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		}
		if s.client {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		}
		ca := cas["ca"]
		if s.ca != "" {
			ca = cas[s.ca]
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
		if err != nil {
			return fmt.Errorf("signing %s: %w", s.name, err)
		}
		if err := writeCertKey(dir, s.name, der, key); err != nil {
			return err
		}
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func writeCertKey(dir, name string, der []byte, key crypto.Signer) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, name+".key"), key)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
