package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// natsAuth is the bus's decentralised auth (docs/security.md): an operator
// that trusts a system account and the account skiff's projects use
// (JetStream on), whose signing key mints users. nats-server gets the
// accounts' JWTs preloaded in a memory resolver; the tests get a user with
// every right of the account (the CLI's) and the signing key's seed (what
// deploy mints the workloads' users with).
type natsAuth struct {
	operatorJWT    string
	sysPub, sysJWT string
	accPub, accJWT string
	creds, signing string // files
	stranger       string // a user of an account the server does not trust
	expired        string // an expired user of the account
}

// writeNATSAuth makes the operator, the accounts and the users, and writes
// the users' .creds and the signing key's seed into dir.
func writeNATSAuth(dir string) (*natsAuth, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	okp, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "skiff-test"
	account := func(signer nkeys.KeyPair, name string, js bool, sk nkeys.KeyPair) (string, string, error) {
		akp, err := nkeys.CreateAccount()
		if err != nil {
			return "", "", err
		}
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{DiskStorage: -1, MemoryStorage: -1, Streams: -1, Consumer: -1}
		}
		if sk != nil {
			spub, _ := sk.PublicKey()
			ac.SigningKeys.Add(spub)
		}
		tok, err := ac.Encode(signer)
		return apub, tok, err
	}
	a := &natsAuth{}
	if a.sysPub, a.sysJWT, err = account(okp, "SYS", false, nil); err != nil {
		return nil, err
	}
	signer, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	if a.accPub, a.accJWT, err = account(okp, "skiff", true, signer); err != nil {
		return nil, err
	}
	oc.SystemAccount = a.sysPub
	if a.operatorJWT, err = oc.Encode(okp); err != nil {
		return nil, err
	}
	user := func(file, name, account string, signer nkeys.KeyPair, expires int64) (string, error) {
		ukp, err := nkeys.CreateUser()
		if err != nil {
			return "", err
		}
		upub, _ := ukp.PublicKey()
		uc := jwt.NewUserClaims(upub)
		uc.Name, uc.IssuerAccount, uc.Expires = name, account, expires
		tok, err := uc.Encode(signer)
		if err != nil {
			return "", err
		}
		seed, _ := ukp.Seed()
		creds, err := jwt.FormatUserConfig(tok, seed)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, file)
		return path, os.WriteFile(path, creds, 0o600)
	}
	if a.creds, err = user("e2e.creds", "e2e", a.accPub, signer, 0); err != nil {
		return nil, err
	}
	if a.expired, err = user("expired.creds", "expired", a.accPub, signer, 1); err != nil {
		return nil, err
	}
	// A user of an account of another operator: well formed, not trusted.
	other, _ := nkeys.CreateAccount()
	opub2, _ := other.PublicKey()
	if a.stranger, err = user("stranger.creds", "stranger", opub2, other, 0); err != nil {
		return nil, err
	}
	seed, _ := signer.Seed()
	a.signing = filepath.Join(dir, "account-signing.nk")
	if err := os.WriteFile(a.signing, append(seed, '\n'), 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// natsConfig is nats-server's configuration: JetStream on /data, the
// operator and its accounts, and TLS with the cluster CA's certificate
// for clients that ask for it (tls://); plain nats:// stays allowed.
func natsConfig(a *natsAuth) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: skiff-nats\nport: 4222\nhttp_port: 8222\n")
	fmt.Fprintf(&b, "jetstream: {store_dir: /data}\n")
	fmt.Fprintf(&b, "operator: %s\nsystem_account: %s\nresolver: MEMORY\n", a.operatorJWT, a.sysPub)
	fmt.Fprintf(&b, "resolver_preload: {\n  %s: %s\n  %s: %s\n}\n", a.sysPub, a.sysJWT, a.accPub, a.accJWT)
	fmt.Fprintf(&b, "tls: {cert_file: /etc/nats/tls.crt, key_file: /etc/nats/tls.key}\nallow_non_tls: true\n")
	return b.String()
}
