// Package natstest runs a real nats-server with JetStream for tests: the
// server's own code, in the test's process, on loopback, with a file store
// in the test's temporary folder.
package natstest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Start starts a server and returns its client URL; it stops with the test.
func Start(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// Connect connects to url with JetStream; the connection closes with the
// test.
func Connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Operator is a server in operator mode (NATS decentralised auth): its
// operator trusts a system account and the account Account, whose users
// are signed by the signing key SigningKey; the accounts' JWTs are in the
// server's memory resolver.
type Operator struct {
	URL string
	// Account is the account's public key (A...); SigningKey its signing
	// key's seed (SA...).
	Account    string
	SigningKey []byte
	// Dir holds the files WriteUser writes.
	Dir string

	accountKey nkeys.KeyPair
	signer     nkeys.KeyPair
	resolver   *server.MemAccResolver
	srv        *server.Server
}

// StartOperator starts a server in operator mode with JetStream on the
// account; it stops with the test.
func StartOperator(t testing.TB) *Operator {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "test"
	account := func(name string, js bool, signer nkeys.KeyPair) (nkeys.KeyPair, string) {
		akp, err := nkeys.CreateAccount()
		must(err)
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{DiskStorage: -1, MemoryStorage: -1, Streams: -1, Consumer: -1}
		}
		if signer != nil {
			spub, _ := signer.PublicKey()
			ac.SigningKeys.Add(spub)
		}
		tok, err := ac.Encode(okp)
		must(err)
		return akp, tok
	}
	res := &server.MemAccResolver{}
	skp, sysJWT := account("SYS", false, nil)
	sysPub, _ := skp.PublicKey()
	must(res.Store(sysPub, sysJWT))
	signer, err := nkeys.CreateAccount()
	must(err)
	akp, accJWT := account("skiff", true, signer)
	apub, _ := akp.PublicKey()
	must(res.Store(apub, accJWT))
	oc.SystemAccount = sysPub
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: res, SystemAccount: sysPub})
	must(err)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	seed, _ := signer.Seed()
	return &Operator{URL: s.ClientURL(), Account: apub, SigningKey: seed, Dir: t.TempDir(),
		accountKey: akp, signer: signer, resolver: res, srv: s}
}

// User is a user of the account to write with WriteUser.
type User struct {
	Name    string
	Pub     []string // nil: every subject
	Sub     []string // nil: every subject
	Expires time.Time
}

// WriteUser mints u, signed by the account's signing key, and writes its
// .creds file into o.Dir; it returns the file's path.
func (o *Operator) WriteUser(t testing.TB, u User) string {
	t.Helper()
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Name = u.Name
	uc.IssuerAccount = o.Account
	uc.Pub.Allow.Add(u.Pub...)
	uc.Sub.Allow.Add(u.Sub...)
	if !u.Expires.IsZero() {
		uc.Expires = u.Expires.Unix()
	}
	tok, err := uc.Encode(o.signer)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.Dir, u.Name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteSigningKey writes the signing key's seed into o.Dir and returns
// the file's path.
func (o *Operator) WriteSigningKey(t testing.TB) string {
	t.Helper()
	path := filepath.Join(o.Dir, "account.nk")
	if err := os.WriteFile(path, append(o.SigningKey, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
