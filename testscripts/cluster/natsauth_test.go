package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
)

func readUser(t *testing.T, file string) *jwt.UserClaims {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

// The bus's accounts: the operator trusts the system account and the
// projects' account (JetStream on, one signing key); the test user is
// signed by that key for that account; the expired user has expired; the
// stranger's account is not one the server knows. The server's
// configuration preloads both accounts and serves TLS beside plain
// clients, with a certificate for the Service's names.
func TestNATSAuth(t *testing.T) {
	dir := t.TempDir()
	a, err := writeNATSAuth(filepath.Join(dir, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	oc, err := jwt.DecodeOperatorClaims(a.operatorJWT)
	if err != nil || oc.SystemAccount != a.sysPub {
		t.Fatalf("operator: %+v, %v", oc, err)
	}
	ac, err := jwt.DecodeAccountClaims(a.accJWT)
	if err != nil || ac.Issuer != oc.Subject || len(ac.SigningKeys) != 1 || !ac.Limits.JetStreamLimits.IsUnlimited() {
		t.Fatalf("account: %+v, %v", ac, err)
	}
	u := readUser(t, a.creds)
	if u.IssuerAccount != a.accPub || !ac.SigningKeys.Contains(u.Issuer) || u.Expires != 0 {
		t.Errorf("the test user: issuer %s for %s, expires %d", u.Issuer, u.IssuerAccount, u.Expires)
	}
	if e := readUser(t, a.expired); e.Expires == 0 || time.Unix(e.Expires, 0).After(time.Now()) {
		t.Errorf("the expired user expires at %d", e.Expires)
	}
	if s := readUser(t, a.stranger); s.IssuerAccount == a.accPub || s.IssuerAccount == a.sysPub {
		t.Errorf("the stranger is of a known account %s", s.IssuerAccount)
	}
	seed, err := os.ReadFile(a.signing)
	if err != nil || !strings.HasPrefix(string(seed), "SA") {
		t.Errorf("the signing key's file: %v", err)
	}
	cfg := natsConfig(a)
	for _, want := range []string{"operator: " + a.operatorJWT, "system_account: " + a.sysPub, "resolver: MEMORY",
		a.sysPub + ": " + a.sysJWT, a.accPub + ": " + a.accJWT, "jetstream: {store_dir: /data}", "allow_non_tls: true", "cert_file: /etc/nats/tls.crt"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the configuration lacks %q", want)
		}
	}

	if err := writePKI(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "pki", "ca.crt")))
	leaf := readCert(t, filepath.Join(dir, "pki", "nats.crt"))
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "nats.nats.svc." + clusterDomain, Roots: roots}); err != nil {
		t.Errorf("the bus's certificate: %v", err)
	}
}
