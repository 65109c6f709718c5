package cigen

import (
	"strings"
	"testing"
)

// signedManifest signs with a key file (never committed: CI reads it from
// a secret) and, in prod, with a key in a variable; it verifies with a key
// in a variable.
const signedManifest = shopManifest + `    signing: {key: env://PROD_SIGNING_KEY}
signing: {key: skiff.key}
verify: {key: env://SKIFF_VERIFY_KEY}
`

func TestPipelinesSignAndVerify(t *testing.T) {
	root := writeProject(t, signedManifest, shopFiles())

	gh := string(render(t, root, GitHub, ""))
	lintWorkflow(t, []byte(gh))
	for _, want := range []string{
		"          SKIFF_SIGNING_KEY: ${{ secrets.SKIFF_SIGNING_KEY }}\n",
		"          SKIFF_SIGNING_PASSWORD: ${{ secrets.SKIFF_SIGNING_PASSWORD }}\n",
		"          SKIFF_VERIFY_KEY: ${{ secrets.SKIFF_VERIFY_KEY }}\n",
		"run: skiff deploy --sign-key env://SKIFF_SIGNING_KEY --non-interactive\n",
		"#   SKIFF_SIGNING_KEY        the private key deploy signs the images with\n",
	} {
		if !strings.Contains(gh, want) {
			t.Errorf("the GitHub workflow lacks %q:\n%s", want, gh)
		}
	}
	// The pull-request build pushes nothing, so it signs nothing and needs no key.
	build := gh[strings.Index(gh, "  build:"):strings.Index(gh, "  deploy:")]
	if strings.Contains(build, "SIGNING") {
		t.Errorf("the build job reads the signing key:\n%s", build)
	}

	// prod names a variable: deploy reads it as skiff.yaml says, no flag.
	prod := string(render(t, root, GitHub, "prod"))
	lintWorkflow(t, []byte(prod))
	if !strings.Contains(prod, "PROD_SIGNING_KEY: ${{ secrets.PROD_SIGNING_KEY }}") || !strings.Contains(prod, "run: skiff deploy --env prod --non-interactive") {
		t.Errorf("prod's workflow:\n%s", prod)
	}

	gl := render(t, root, GitLab, "")
	_, jobs := parseGitLab(t, gl)
	if got := strings.Join(jobs["deploy"].Script, "\n"); !strings.Contains(got, "skiff deploy --sign-key env://SKIFF_SIGNING_KEY --non-interactive") {
		t.Errorf("the GitLab deploy job runs:\n%s", got)
	}
	if !strings.Contains(string(gl), "#   SKIFF_SIGNING_PASSWORD   its password, masked\n") || !strings.Contains(string(gl), "#   SKIFF_VERIFY_KEY         the public key") {
		t.Errorf("the GitLab pipeline does not list the signing variables:\n%s", gl)
	}

	// Without signing: nothing of it.
	plain := string(render(t, writeProject(t, shopManifest, shopFiles()), GitHub, ""))
	if strings.Contains(plain, "SIGNING") || strings.Contains(plain, "--sign") {
		t.Errorf("a project without signing: signs:\n%s", plain)
	}
}
