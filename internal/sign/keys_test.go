package sign

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateRoundTrip(t *testing.T) {
	kp, err := Generate([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp.Private)
	if block == nil || block.Type != PrivateKeyPEM {
		t.Fatalf("private key PEM: %q", kp.Private)
	}
	// The private key is never in the clear: the PEM body is the
	// encrypted JSON (scrypt, nacl/secretbox), not PKCS #8 DER.
	if !bytes.Contains(block.Bytes, []byte(`"name":"scrypt"`)) || !bytes.Contains(block.Bytes, []byte(`"name":"nacl/secretbox"`)) {
		t.Fatalf("private key body is not cosign's encrypted JSON: %s", block.Bytes)
	}
	priv, err := ParsePrivateKey(kp.Private, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(pub) {
		t.Fatal("the public key is not the private key's")
	}
	if _, err := ParsePrivateKey(kp.Private, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := ParsePrivateKey(kp.Public, []byte("s3cret")); err == nil || !strings.Contains(err.Error(), `"PUBLIC KEY"`) {
		t.Fatalf("a public key read as private: %v", err)
	}
	if _, err := ParsePublicKey(kp.Private); err == nil {
		t.Fatal("a private key read as public")
	}
	if !strings.HasPrefix(Fingerprint(pub), "SHA256:") || len(Fingerprint(pub)) != len("SHA256:")+64 {
		t.Fatalf("fingerprint %q", Fingerprint(pub))
	}
}

func TestReadKeyRef(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k.pub"), []byte("PUB"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SKIFF_SIGNING_KEY": "FROMENV"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ ref, want, err string }{
		{ref: "k.pub", want: "PUB"},
		{ref: filepath.Join(dir, "k.pub"), want: "PUB"},
		{ref: "env://SKIFF_SIGNING_KEY", want: "FROMENV"},
		{ref: "env://UNSET", err: "UNSET is empty or not set"},
		{ref: "env://", err: "names no environment variable"},
		{ref: "missing.key", err: "does not exist; create a pair with `skiff keys generate`"},
	} {
		got, err := ReadKeyRef(tc.ref, dir, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q, %v", tc.ref, got, err)
		}
	}
}
