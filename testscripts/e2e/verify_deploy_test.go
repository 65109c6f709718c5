//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestDeployVerified: a project with signing: and verify: deploys its
// signed images; deploy refuses an unsigned --image and rollback a
// revision whose signature no longer verifies, both before anything
// changes on the cluster.
func TestDeployVerified(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-verify")
	c.env = append(c.env, "SKIFF_SIGNING_PASSWORD="+signPassword)
	root := filepath.Join(t.TempDir(), "shop")
	repo := c.registry + "/e2e-" + ns
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", repo, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "keys", "generate")
	appendFile(t, filepath.Join(root, "skiff.yaml"), "signing: {key: skiff.key}\nverify: {key: skiff.pub}\n")

	// Signed at push, verified, deployed.
	_, errOut, code := c.skiffIn(t, root, "deploy", "--timeout", "3m")
	if code != 0 || !strings.Contains(errOut, "hello signed: 1 manifest signed with key") || !strings.Contains(errOut, "hello verified (") {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	first := c.status(t, root)["hello"]
	if first.Revision != 1 || first.State != "Ready" {
		t.Fatalf("status after the first deploy: %+v", first)
	}

	// An unsigned image is refused, and the release is left as it was.
	img, err := random.Image(256, 1)
	must(t, err)
	ref, err := name.ParseReference(repo+"/hello:unsigned", name.Insecure)
	must(t, err)
	must(t, remote.Write(ref, img))
	d, err := img.Digest()
	must(t, err)
	unsigned := repo + "/hello@" + d.String()
	_, errOut, code = c.skiffIn(t, root, "deploy", "--image", unsigned, "--timeout", "1m")
	if code != 1 || !strings.Contains(errOut, "refusing to deploy hello, nothing changed: "+unsigned+" does not verify: not signed") {
		t.Fatalf("deploy of an unsigned image: exit %d\n%s", code, errOut)
	}
	if st := c.status(t, root)["hello"]; st.Revision != 1 || st.Image != first.Image {
		t.Fatalf("the refused deploy changed the release: %+v, was %+v", st, first)
	}

	// A second signed revision; then revision 1's signature is replaced
	// by one that does not verify: rollback to it is refused.
	replaceInFile(t, filepath.Join(root, "hello", "main.go"), `Greeting: "Hello"`, `Greeting: "Howdy"`)
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	second := c.status(t, root)["hello"]
	if second.Revision != 2 || second.Image == first.Image {
		t.Fatalf("status after the second deploy: %+v", second)
	}
	firstDigest := first.Image[strings.LastIndex(first.Image, "@")+1:]
	sigTag, err := name.NewTag(repo+"/hello:"+strings.Replace(firstDigest, ":", "-", 1)+".sig", name.Insecure)
	must(t, err)
	garbage, err := random.Image(64, 1)
	must(t, err)
	must(t, remote.Write(sigTag, garbage))
	_, errOut, code = c.skiffIn(t, root, "rollback", "hello", "1")
	if code != 1 || !strings.Contains(errOut, "refusing to roll hello back to revision 1, nothing changed") || !strings.Contains(errOut, "no signature in") {
		t.Fatalf("rollback to a revision that no longer verifies: exit %d\n%s", code, errOut)
	}
	if st := c.status(t, root)["hello"]; st.Revision != 2 || st.Image != second.Image {
		t.Fatalf("the refused rollback changed the release: %+v", st)
	}
	// skiff verify agrees: revision 2's image verifies, revision 1's not.
	c.mustSkiff(t, root, "verify", second.Image)
	if _, errOut, code := c.skiffIn(t, root, "verify", first.Image); code != 1 {
		t.Fatalf("skiff verify of revision 1's image: exit %d\n%s", code, errOut)
	}
}
