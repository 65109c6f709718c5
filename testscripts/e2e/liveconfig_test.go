//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffdev/skiff/internal/kube"
)

// TestLiveConfig deploys a function of each language with liveConfig and
// two pods in a namespace that enforces the restricted Pod Security
// Standard, then changes GREETING with config set --apply, rolls back, and
// edits the ConfigMap by hand into something the function rejects. Every
// pod answers each good value without a restart; the Role lets the pods
// read their own ConfigMap and nothing else.
func TestLiveConfig(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-live")
	b := pushBases(t, c.registry)
	root := filepath.Join(t.TempDir(), "live")
	langs := []string{"go", "node", "python"}
	for i, lang := range langs {
		name := "fn-" + lang
		if i == 0 {
			c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", lang, "--name", name,
				"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
		} else {
			c.mustSkiff(t, root, "add", name, "--kind", "function", "--lang", lang)
		}
		replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: "+name+"\n",
			"  - name: "+name+"\n    replicas: 2\n    liveConfig: true\n    config: {GREETING: Hello}\n")
	}
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "workloads:\n",
		"build:\n  base: {node: "+b.Node+", python: "+b.Python+"}\nworkloads:\n")
	c.mustSkiff(t, root, "deploy", "--timeout", "5m")
	if out, stderr, _ := c.skiffIn(t, root, "config", "list", "-w", "fn-go"); !strings.Contains(stderr, "fn-go: live config") {
		t.Errorf("config list does not say fn-go is live:\n%s%s", out, stderr)
	}

	ctx := context.Background()
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			name := "fn-" + lang
			fn := c.livePods(t, ns, "live-"+name, workloadPort(t, root, name))
			fn.answer(t, "Hello")

			c.mustSkiff(t, root, "config", "set", "GREETING=Bonjour", "-w", name, "--apply", "--timeout", "3m")
			fn.answer(t, "Bonjour")

			// Rollback restores the old ConfigMap: live too.
			c.mustSkiff(t, root, "rollback", name, "--timeout", "3m")
			fn.answer(t, "Hello")

			// A hand edit the function rejects: the pods keep the last
			// good value and say why; the next good edit goes through.
			cms := c.kc.Clientset.CoreV1().ConfigMaps(ns)
			patch := func(greeting string) {
				t.Helper()
				body := fmt.Sprintf(`{"data":{"GREETING":%q}}`, greeting)
				if _, err := cms.Patch(ctx, name+"-config", types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			patch("   ")
			fn.logged(t, "GREETING must not be blank")
			fn.answer(t, "Hello")
			patch("Hola")
			fn.answer(t, "Hola")

			fn.unchanged(t)
		})
	}

	t.Run("role", func(t *testing.T) { c.checkConfigRole(t, ns, "fn-go") })
	c.mustSkiff(t, root, "delete", "--all")
}

// livePods are the ready pods of a release, as they were when found, each
// behind its own port-forward.
type livePods struct {
	c        *cluster
	ns       string
	pods     []corev1.Pod
	forwards []*kube.Forward
}

func (c *cluster) livePods(t *testing.T, ns, release string, port int) *livePods {
	t.Helper()
	ctx := context.Background()
	selector := "app.kubernetes.io/instance=" + release
	var pods []corev1.Pod
	waitFor(t, 2*time.Minute, "two ready pods of "+release, func() bool {
		list, err := c.kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				pods = append(pods, p)
			}
		}
		return len(pods) == 2 && len(list.Items) == 2
	})
	lp := &livePods{c: c, ns: ns, pods: pods}
	for _, p := range pods {
		fw, err := c.kc.ForwardPort(ctx, ns, p.Name, port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fw.Close() })
		lp.forwards = append(lp.forwards, fw)
	}
	return lp
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// answer waits until every pod greets with want.
func (lp *livePods) answer(t *testing.T, want string) {
	t.Helper()
	for i, fw := range lp.forwards {
		var body string
		waitFor(t, 30*time.Second, fmt.Sprintf("pod %s to answer %q", lp.pods[i].Name, want), func() bool {
			var err error
			body, err = httpGet("http://" + fw.Addr + "/?name=Ada")
			return err == nil && strings.Contains(body, want+", Ada!")
		})
	}
}

// logged waits until every pod's log holds text.
func (lp *livePods) logged(t *testing.T, text string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range lp.pods {
		waitFor(t, 30*time.Second, fmt.Sprintf("pod %s to log %q", p.Name, text), func() bool {
			r, err := lp.c.kc.Clientset.CoreV1().Pods(lp.ns).GetLogs(p.Name, &corev1.PodLogOptions{}).Stream(ctx)
			if err != nil {
				return false
			}
			defer r.Close()
			for s := bufio.NewScanner(r); s.Scan(); {
				if strings.Contains(s.Text(), text) {
					return true
				}
			}
			return false
		})
	}
}

// unchanged checks the pods are the ones found at first, never restarted.
func (lp *livePods) unchanged(t *testing.T) {
	t.Helper()
	for _, p := range lp.pods {
		now, err := lp.c.kc.Clientset.CoreV1().Pods(lp.ns).Get(context.Background(), p.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("pod %s is gone: %v", p.Name, err)
			continue
		}
		if now.UID != p.UID {
			t.Errorf("pod %s was replaced", p.Name)
		}
		for i, s := range now.Status.ContainerStatuses {
			if s.RestartCount != p.Status.ContainerStatuses[i].RestartCount {
				t.Errorf("pod %s: container %s restarted (%d times)", p.Name, s.Name, s.RestartCount)
			}
		}
	}
}

// checkConfigRole reads back the Role of workload's pods and uses a token
// of their service account: it may get and watch its own ConfigMap and
// do nothing else.
func (c *cluster) checkConfigRole(t *testing.T, ns, workload string) {
	ctx := context.Background()
	role, err := c.kc.Clientset.RbacV1().Roles(ns).Get(ctx, workload+"-config-reader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", role.Rules), fmt.Sprintf("[{Verbs:[get watch] APIGroups:[] Resources:[configmaps] ResourceNames:[%s-config] NonResourceURLs:[]}]", workload); got != want {
		t.Errorf("rules = %s, want %s", got, want)
	}
	tok, err := c.kc.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, workload,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.kc.REST)
	cfg.BearerToken = tok.Status.Token
	pod, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pod.CoreV1().ConfigMaps(ns).Get(ctx, workload+"-config", metav1.GetOptions{}); err != nil {
		t.Errorf("the pods may not read their own ConfigMap: %v", err)
	}
	w, err := pod.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + workload + "-config"})
	if err != nil {
		t.Errorf("the pods may not watch their own ConfigMap: %v", err)
	} else {
		w.Stop()
	}
	forbidden := map[string]error{
		"get another ConfigMap": errOf(pod.CoreV1().ConfigMaps(ns).Get(ctx, "fn-node-config", metav1.GetOptions{})),
		"list ConfigMaps":       errOf(pod.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})),
		"update the ConfigMap":  errOf(pod.CoreV1().ConfigMaps(ns).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: workload + "-config"}}, metav1.UpdateOptions{})),
		"get a Secret":          errOf(pod.CoreV1().Secrets(ns).Get(ctx, workload+"-secrets", metav1.GetOptions{})),
		"list pods":             errOf(pod.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})),
	}
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s with the pods' token: err = %v, want Forbidden", what, err)
		}
	}
}
