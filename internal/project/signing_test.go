package project

import (
	"strings"
	"testing"
)

func TestSigningAndVerify(t *testing.T) {
	p, err := Parse([]byte(valid + `signing: {key: skiff.key}
verify: {key: env://SKIFF_VERIFY_KEY}
environments:
  prod:
    verify: {key: prod.pub}
  staging: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Signing.Key != "skiff.key" || p.Verify.Key != "env://SKIFF_VERIFY_KEY" {
		t.Fatalf("top level: signing %+v, verify %+v", p.Signing, p.Verify)
	}
	prod, err := p.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Verify.Key != "prod.pub" || prod.Signing.Key != "skiff.key" {
		t.Errorf("prod: the environment's verify replaces the top level's, signing is kept: %+v %+v", prod.Verify, prod.Signing)
	}
	staging, _ := p.ForEnv("staging")
	if staging.Verify.Key != "env://SKIFF_VERIFY_KEY" {
		t.Errorf("staging keeps the top-level verify: %+v", staging.Verify)
	}
}

func TestSigningErrors(t *testing.T) {
	head := "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads: [{name: x, kind: service, lang: go}]\n"
	for _, tc := range []struct{ yaml, want string }{
		{"signing: {}\n", "line 4: signing.key is missing"},
		{"verify: {key: \"env://\"}\n", `verify.key "env://" is not env://NAME`},
		{"signing: {key: awskms://alias/k}\n", "KMS and keyless signing are not supported"},
		{"signing: {kee: a}\n", "kee"},
		{"environments:\n  prod:\n    verify: {key: ''}\n", "line 6: environments.prod.verify.key is missing"},
	} {
		_, err := Parse([]byte(head + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "kee") && !strings.Contains(err.Error(), "skiff keys generate") {
			t.Errorf("%q: error %v does not say how to make a key", tc.yaml, err)
		}
	}
}
