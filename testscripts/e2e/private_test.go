//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/deploy"
)

// TestDeployPrivateRegistry deploys from the test cluster's second
// registry, which wants an account: skiff pushes with the credentials
// `skiff login` stored, finds that an anonymous pull is refused, keeps a
// pull Secret of that registry alone in the namespace (not in the
// release), and the node's containerd pulls through it; delete --all
// removes it.
func TestDeployPrivateRegistry(t *testing.T) {
	c := needCluster(t)
	reg, user, password := os.Getenv("SKIFF_TEST_AUTH_REGISTRY"), os.Getenv("SKIFF_TEST_AUTH_USER"), os.Getenv("SKIFF_TEST_AUTH_PASSWORD")
	if reg == "" || password == "" {
		t.Skip("the test cluster's env has no SKIFF_TEST_AUTH_REGISTRY")
	}
	ctx := context.Background()
	ns := c.restrictedNamespace(t, "e2e-private")
	docker := filepath.Join(t.TempDir(), "docker")
	env := append(append([]string(nil), c.env...), "DOCKER_CONFIG="+docker)
	root := filepath.Join(t.TempDir(), "shop")
	mustRun(t, "", env, c.skiff, "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", reg+"/e2e-private", "-n", ns, "--non-interactive")

	login := exec.Command(c.skiff, "login", reg, "-u", user, "--password-stdin")
	login.Dir, login.Env, login.Stdin = root, append(os.Environ(), env...), strings.NewReader(password+"\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	_, errOut, code := run(t, root, env, c.skiff, "deploy", "--timeout", "3m")
	if code != 0 {
		t.Fatalf("deploy from the private registry: exit %d\n%s", code, errOut)
	}
	secret := "shop-registry-pull"
	if !strings.Contains(errOut, reg+" wants credentials to pull: pods pull with Secret "+ns+"/"+secret) {
		t.Errorf("deploy did not say it keeps a pull secret:\n%s", errOut)
	}
	if st := c.status(t, root)["hello"]; st.State != "Ready" {
		t.Fatalf("status: %+v", st)
	}
	s, err := c.kc.Clientset.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(s.Data[corev1.DockerConfigJsonKey])
	if s.Type != corev1.SecretTypeDockerConfigJson || !strings.Contains(cfg, reg) || strings.Count(cfg, `"auth"`) != 1 {
		t.Errorf("pull secret %s: type %s, %d registries", secret, s.Type, strings.Count(cfg, `"auth"`))
	}
	pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=shop-hello"})
	if err != nil || len(pods.Items) == 0 || len(pods.Items[0].Spec.ImagePullSecrets) != 1 || pods.Items[0].Spec.ImagePullSecrets[0].Name != secret {
		t.Errorf("the pods do not pull with %s: %v", secret, err)
	}
	rel, err := deploy.ForCluster(c.kc, nil).Get(context.Background(), "shop-hello", ns)
	if err != nil || strings.Contains(rel.Manifest, "kind: Secret") || strings.Contains(rel.Manifest, password) {
		t.Errorf("the release manifest holds the pull secret (err %v)", err)
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Errorf("hello answered %q", body)
	}

	c.mustSkiff(t, root, "delete", "--all")
	if _, err := c.kc.Clientset.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{}); err == nil {
		t.Error("delete --all left the pull secret")
	}
}
