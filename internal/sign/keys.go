// Package sign holds what skiff's signatures are made of, in the formats
// cosign reads: ECDSA P-256 key pairs stored as cosign stores them (the
// private key encrypted with scrypt and nacl/secretbox), simple-signing
// payloads, in-toto statements in DSSE envelopes, and the SLSA v1
// provenance of a build. It does no I/O to registries: package oci puts
// signatures and attestations next to images and reads them back.
package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// PEM block types of cosign's key files.
const (
	// PrivateKeyPEM is the block of an encrypted private key (scrypt and
	// nacl/secretbox over the PKCS #8 DER), as cosign writes it.
	PrivateKeyPEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
	// legacyPrivateKeyPEM is what older cosign releases wrote.
	legacyPrivateKeyPEM = "ENCRYPTED COSIGN PRIVATE KEY"
	// PublicKeyPEM is the block of a PKIX public key.
	PublicKeyPEM = "PUBLIC KEY"
)

// EnvPrefix marks a key reference read from an environment variable
// ("env://SKIFF_SIGNING_KEY"), as cosign's --key does.
const EnvPrefix = "env://"

// ErrWrongPassword says a private key did not decrypt with the password given.
var ErrWrongPassword = errors.New("the password does not decrypt the private key")

// KeyPair is a freshly generated key pair, both halves PEM-encoded, the
// private half encrypted.
type KeyPair struct {
	Private []byte
	Public  []byte
}

// Generate makes an ECDSA P-256 key pair whose private key is encrypted
// with password (cosign's format: `cosign sign --key` reads it).
func Generate(password []byte) (*KeyPair, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, fmt.Errorf("encrypting the private key: %w", err)
	}
	pub, err := MarshalPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Private: pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEM, Bytes: enc}), Public: pub}, nil
}

// MarshalPublicKey encodes pub as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: PublicKeyPEM, Bytes: der}), nil
}

// ParsePrivateKey decrypts an encrypted private key PEM with password.
func ParsePrivateKey(data, password []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in it; it is not a private key (create one with `skiff keys generate`)")
	}
	if block.Type != PrivateKeyPEM && block.Type != legacyPrivateKeyPEM {
		return nil, fmt.Errorf("it holds a %q PEM block, not an encrypted private key (%s); create one with `skiff keys generate`", block.Type, PrivateKeyPEM)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("decrypting the private key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decrypted private key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the private key is a %T; skiff signs with ECDSA P-256 keys only", k)
	}
	return ec, nil
}

// ParsePublicKey reads a "PUBLIC KEY" PEM block holding an ECDSA P-256 key.
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != PublicKeyPEM {
		return nil, errors.New("no PUBLIC KEY PEM block in it; use the .pub file `skiff keys generate` wrote")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the public key is a %T; skiff verifies ECDSA P-256 keys only", k)
	}
	return ec, nil
}

// Fingerprint names a public key: "SHA256:" and the hex SHA-256 of its
// PKIX DER encoding.
func Fingerprint(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "unknown key"
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// ReadKeyRef reads the key a reference names: "env://NAME" is the value of
// the environment variable NAME, anything else a file, relative to dir
// when not absolute.
func ReadKeyRef(ref, dir string, getenv func(string) string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, EnvPrefix); ok {
		if name == "" {
			return nil, fmt.Errorf("key %q names no environment variable; write env://NAME", ref)
		}
		v := getenv(name)
		if v == "" {
			return nil, fmt.Errorf("key %s: the environment variable %s is empty or not set", ref, name)
		}
		return []byte(v), nil
	}
	path := ref
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("key file %s does not exist; create a pair with `skiff keys generate`", path)
		}
		return nil, fmt.Errorf("reading key: %w", err)
	}
	return b, nil
}
