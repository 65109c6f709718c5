package probe

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/target"
)

// Cluster is what the cluster checks share: a client and one answer to
// "does it answer at all", so that a cluster that does not is said once.
type Cluster struct {
	Clientset kubernetes.Interface
	Host      string // for messages
	Context   string
	Namespace string
	// Ping checks the cluster answers (kube.Client.Ping).
	Ping func(ctx context.Context) error

	once    sync.Once
	pingErr error
	done    chan struct{}
}

// reach pings once; every caller gets the same answer.
func (c *Cluster) reach(ctx context.Context) error {
	c.once.Do(func() {
		c.done = make(chan struct{})
		go func() {
			defer close(c.done)
			c.pingErr = c.Ping(context.WithoutCancel(ctx))
		}()
	})
	select {
	case <-c.done:
		return c.pingErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unreachable is the result of a check that needs the cluster, when it
// does not answer.
func unreachable() doctor.Result {
	return doctor.Skips("the cluster does not answer (see the cluster check)")
}

// Reach checks the cluster answers and says its version, context and
// namespace.
func (c *Cluster) Reach() doctor.Check {
	return doctor.Check{Name: "cluster", Run: func(ctx context.Context) doctor.Result {
		if err := c.reach(ctx); err != nil {
			return doctor.Fails(err.Error(), "start the cluster, or pick another with --context or --kubeconfig")
		}
		v, err := c.Clientset.Discovery().ServerVersion()
		if err != nil {
			return doctor.Fails(fmt.Sprintf("%s answers, but not with its version: %v", c.Host, err), "check the kubeconfig's server address")
		}
		return doctor.Okay(fmt.Sprintf("Kubernetes %s at %s, context %q, namespace %s", v.GitVersion, c.Host, c.Context, c.Namespace))
	}}
}

// RBAC asks the API server, with SelfSubjectAccessReviews, whether the
// kubeconfig's user may do each of needs in the namespace.
func (c *Cluster) RBAC(needs []doctor.Access) doctor.Check {
	return doctor.Check{Name: "permissions", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		type answer struct {
			a       doctor.Access
			allowed bool
			err     error
		}
		answers := make([]answer, len(needs))
		var wg sync.WaitGroup
		for i, a := range needs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ra := &authv1.ResourceAttributes{Group: a.Group, Resource: a.Resource, Verb: a.Verb}
				if a.Namespaced {
					ra.Namespace = cmp.Or(a.Namespace, c.Namespace)
				}
				if sub, ok := strings.CutPrefix(a.Resource, "pods/"); ok {
					ra.Resource, ra.Subresource = "pods", sub
				}
				r, err := c.Clientset.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
					&authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra}}, metav1.CreateOptions{})
				answers[i] = answer{a: a, err: err, allowed: err == nil && r.Status.Allowed}
			}()
		}
		wg.Wait()
		var denied, elsewhere []string
		for _, an := range answers {
			if an.err != nil {
				return doctor.Fails(fmt.Sprintf("asking whether it may %s: %v", an.a, an.err), "check the kubeconfig's credentials")
			}
			switch {
			case an.allowed:
			case an.a.Namespace != "":
				elsewhere = append(elsewhere, an.a.String())
			default:
				denied = append(denied, an.a.String())
			}
		}
		if len(denied)+len(elsewhere) > 0 {
			var said []string
			if len(denied) > 0 {
				said = append(said, fmt.Sprintf("%s in namespace %s", strings.Join(denied, ", "), c.Namespace))
			}
			said = append(said, elsewhere...)
			return doctor.Fails("may not "+strings.Join(said, ", "),
				"ask for a Role (or the edit ClusterRole) in the namespace that allows them, or use another --context")
		}
		return doctor.Okay(fmt.Sprintf("may do all %d things deploy, status, logs and invoke do in namespace %s", len(needs), c.Namespace))
	}}
}

// PodSecurity says which Pod Security Standard the namespace enforces
// (skiff's pods pass "restricted").
func (c *Cluster) PodSecurity() doctor.Check {
	return doctor.Check{Name: "pod security", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		ns, err := c.Clientset.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return doctor.Okay(fmt.Sprintf("namespace %s does not exist yet; deploy creates it", c.Namespace))
		case apierrors.IsForbidden(err):
			return doctor.Skips(fmt.Sprintf("may not read namespace %s", c.Namespace))
		case err != nil:
			return doctor.Fails(err.Error(), "")
		}
		level := ns.Labels["pod-security.kubernetes.io/enforce"]
		if level == "" {
			return doctor.Okay(fmt.Sprintf("namespace %s enforces no Pod Security Standard (skiff's pods pass restricted)", c.Namespace))
		}
		return doctor.Okay(fmt.Sprintf("namespace %s enforces %s (skiff's pods pass restricted)", c.Namespace, level))
	}}
}

// Architectures checks that the images, built for platforms, can run on
// the cluster's nodes.
func (c *Cluster) Architectures(platforms []string) doctor.Check {
	return doctor.Check{Name: "node architectures", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		nodes, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if apierrors.IsForbidden(err) {
			return doctor.Skips("may not list nodes to see their architectures")
		}
		if err != nil {
			return doctor.Fails(err.Error(), "")
		}
		var built []string
		for _, p := range platforms {
			parts := strings.Split(p, "/")
			if len(parts) >= 2 {
				built = append(built, parts[1])
			}
		}
		byArch := map[string]int{}
		for _, n := range nodes.Items {
			byArch[n.Labels["kubernetes.io/arch"]]++
		}
		var archs, missing []string
		for a, n := range byArch {
			archs = append(archs, fmt.Sprintf("%d %s", n, a))
			if !slices.Contains(built, a) {
				missing = append(missing, a)
			}
		}
		sort.Strings(archs)
		sort.Strings(missing)
		have := fmt.Sprintf("nodes: %s; images: %s", strings.Join(archs, ", "), strings.Join(platforms, ", "))
		switch {
		case len(nodes.Items) == 0:
			return doctor.Warns("the cluster has no nodes", "add nodes: pods cannot run")
		case len(missing) == len(byArch):
			return doctor.Fails(have+"; no node can run the images", fmt.Sprintf("add linux/%s to build.platforms in skiff.yaml", missing[0]))
		case len(missing) > 0:
			return doctor.Warns(have+"; pods scheduled on "+strings.Join(missing, ", ")+" nodes would not start",
				fmt.Sprintf("add linux/%s to build.platforms, or keep pods off those nodes", strings.Join(missing, ", linux/")))
		}
		return doctor.Okay(have)
	}}
}

// Bus checks the project's event bus answers, with JetStream: check
// connects (through the cluster when the bus is one of its Services) and
// says what it found.
func (c *Cluster) Bus(check func(ctx context.Context) (string, error)) doctor.Check {
	return doctor.Check{Name: "event bus", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		detail, err := check(ctx)
		if err != nil {
			return doctor.Fails(err.Error(), "point events.bus at a NATS server started with JetStream (nats-server --jetstream); docs/events.md")
		}
		return doctor.Okay(detail)
	}}
}

// Engines checks the serverless engines the project uses; check is
// target.Cluster.CheckEngines for the project's workloads.
func (c *Cluster) Engines(check func(ctx context.Context) error) doctor.Check {
	return doctor.Check{Name: "serverless engines", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		if err := check(ctx); err != nil {
			return doctor.Fails(err.Error(), "docs/serverless.md says what to install")
		}
		return doctor.Okay("KEDA's ScaledObject API, the KEDA HTTP add-on's InterceptorRoute API and its interceptor are there")
	}}
}

// Wake checks the cluster's settings a wake from zero waits on (read is
// target.Cluster.WakeSettings): the KEDA HTTP add-on scaler's queue tick,
// its interceptor's connect timeout and kube-proxy's minSyncPeriod. Slower than recommended is a warning:
// scaled workloads work, each wake waits longer.
func (c *Cluster) Wake(read func(ctx context.Context) target.WakeSettings) doctor.Check {
	return doctor.Check{Name: "wake from zero", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		return wakeResult(read(ctx))
	}}
}

// wakeSetting is one setting a wake from zero waits on, as wakeResult
// reports it.
type wakeSetting struct {
	name        string        // what it is, for "not known"
	value       time.Duration // 0: not known
	why         string        // why it is not known
	recommended time.Duration
	slow, fix   string // what a slower value costs, and how to set it
	okay        string // what a fast enough value says
}

func wakeResult(ws target.WakeSettings) doctor.Result {
	settings := []wakeSetting{{
		name: "the KEDA HTTP add-on's queue tick", value: ws.QueueTick, why: ws.QueueTickWhy,
		recommended: target.RecommendedQueueTick,
		slow: fmt.Sprintf("the KEDA HTTP add-on's scaler reads the requests its interceptors hold every %s (%s), so KEDA hears of a wake up to that late",
			ws.QueueTick, target.QueueTickEnv),
		fix:  fmt.Sprintf("set %s=%s on the add-on's scaler Deployment", target.QueueTickEnv, target.RecommendedQueueTick),
		okay: fmt.Sprintf("the KEDA HTTP add-on's scaler reads the held requests every %s", ws.QueueTick),
	}, {
		name: "the KEDA HTTP add-on's connect timeout", value: ws.ConnectTimeout, why: ws.ConnectTimeoutWhy,
		recommended: target.RecommendedConnectTimeout,
		slow: fmt.Sprintf("the KEDA HTTP add-on's interceptor waits up to %s for a connection attempt to a woken pod (%s) before it tries again",
			ws.ConnectTimeout, target.ConnectTimeoutEnv),
		fix:  fmt.Sprintf("set %s=%s on the add-on's interceptor Deployment", target.ConnectTimeoutEnv, target.RecommendedConnectTimeout),
		okay: fmt.Sprintf("its interceptor tries a connection again after %s", ws.ConnectTimeout),
	}, {
		name: "kube-proxy's minSyncPeriod", value: ws.ProxySync, why: ws.ProxySyncWhy,
		recommended: target.RecommendedProxySync,
		slow: fmt.Sprintf("kube-proxy (%s) programs a woken pod's Service address at most every %s (minSyncPeriod), and the interceptor dials that address",
			ws.ProxyMode, ws.ProxySync),
		fix:  fmt.Sprintf("set %s.minSyncPeriod: %s in kube-proxy's configuration", ws.ProxyMode, target.RecommendedProxySync),
		okay: fmt.Sprintf("kube-proxy (%s) programs Service addresses within %s", ws.ProxyMode, ws.ProxySync),
	}}
	var found, slow, fixes []string
	known := false
	for _, s := range settings {
		switch {
		case s.value == 0:
			found = append(found, s.name+": not known ("+s.why+")")
		case s.value > s.recommended:
			known = true
			slow, fixes = append(slow, s.slow), append(fixes, s.fix)
		default:
			known = true
			found = append(found, s.okay)
		}
	}
	if len(slow) > 0 {
		return doctor.Warns(strings.Join(append(slow, found...), "; "),
			strings.Join(fixes, ", and ")+": each wake from zero waits less (docs/serverless.md#wake-up-settings)")
	}
	if !known {
		return doctor.Skips(strings.Join(found, "; "))
	}
	return doctor.Okay(strings.Join(found, "; "))
}

// Edge checks what the project's exposed workloads need of the cluster's
// edge; check is target.Cluster.CheckGateways for its workloads.
func (c *Cluster) Edge(check func(ctx context.Context) (*target.EdgeFindings, error)) doctor.Check {
	return doctor.Check{Name: "edge", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		f, err := check(ctx)
		if err != nil {
			return doctor.Fails(err.Error(), "docs/expose.md says what the cluster needs")
		}
		switch {
		case len(f.Problems) > 0:
			return doctor.Fails(strings.Join(f.Problems, "; "), "docs/expose.md says what the cluster needs")
		case len(f.Warnings) > 0:
			return doctor.Warns(strings.Join(f.Warnings, "; "), "docs/expose.md")
		case len(f.Found) == 0:
			return doctor.Okay("the exposed workloads use Ingresses: nothing to check before deploy")
		}
		return doctor.Okay(strings.Join(f.Found, "; "))
	}}
}

// enforcer is a NetworkPolicy implementation known by the labels of the
// pods it runs as (its own manifests' or Helm chart's), and, where those
// pods run a CNI that enforces policies only when told to, the container
// that does it.
type enforcer struct {
	name, selector, container string
}

// enforcers are the NetworkPolicy implementations doctor recognises.
var enforcers = []enforcer{
	{name: "Calico", selector: "k8s-app=calico-node"},
	{name: "Canal", selector: "k8s-app=canal"},
	{name: "Cilium", selector: "k8s-app=cilium"},
	{name: "kube-router", selector: "k8s-app=kube-router"},
	{name: "Antrea", selector: "app=antrea,component=antrea-agent"},
	{name: "Weave Net", selector: "name=weave-net"},
	{name: "kube-network-policies", selector: "app=kube-network-policies"},
	{name: "kube-network-policies", selector: "k8s-app=kube-network-policies"},
	{name: "Azure NPM", selector: "k8s-app=azure-npm"},
	{name: "the AWS VPC CNI's network policy agent", selector: "k8s-app=aws-node", container: "aws-network-policy-agent"},
}

// EnforcerNames lists the NetworkPolicy implementations NetworkPolicy
// recognises, for messages and docs.
func EnforcerNames() []string {
	var out []string
	for _, e := range enforcers {
		if !slices.Contains(out, e.name) {
			out = append(out, e.name)
		}
	}
	return out
}

// NetworkPolicy says whether the cluster enforces NetworkPolicies: an API
// server takes them whatever the cluster's network does with them, so
// doctor looks for the running pods of a known enforcer, in every
// namespace (in kube-system when it may not list them all). An enforcer
// run outside Kubernetes, as a process on the nodes, leaves no trace in
// the API: it is reported as not found (a warning). on is whether the
// project renders policies (network.policy).
func (c *Cluster) NetworkPolicy(on bool) doctor.Check {
	return doctor.Check{Name: "network policies", Run: func(ctx context.Context) doctor.Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		ns, where := "", "any namespace"
		var found []string
		for _, e := range enforcers {
			pods, err := c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: e.selector})
			if apierrors.IsForbidden(err) && ns == "" {
				ns, where = "kube-system", "kube-system (may not list pods in every namespace)"
				pods, err = c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: e.selector})
			}
			switch {
			case apierrors.IsForbidden(err):
				return doctor.Skips("may not list pods in kube-system: cannot tell whether NetworkPolicies are enforced")
			case err != nil:
				return doctor.Fails(err.Error(), "")
			}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodRunning || (e.container != "" && !slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == e.container })) {
					continue
				}
				if s := fmt.Sprintf("%s (pod %s/%s)", e.name, p.Namespace, p.Name); !slices.ContainsFunc(found, func(f string) bool { return strings.HasPrefix(f, e.name+" ") }) {
					found = append(found, s)
				}
			}
		}
		switch {
		case len(found) > 0 && on:
			return doctor.Okay("enforced by " + strings.Join(found, ", ") + ": each workload's NetworkPolicy admits only its dependents, the interceptor, the gateway and network.allowFrom")
		case len(found) > 0:
			return doctor.Okay("enforced by " + strings.Join(found, ", ") + "; skiff.yaml turns skiff's policies off (network.policy)")
		case on:
			return doctor.Warns("found no NetworkPolicy enforcer running in "+where+" (looked for "+strings.Join(EnforcerNames(), ", ")+"): the API server accepts the workloads' NetworkPolicies, and without an enforcer every pod can reach every workload",
				"install one (docs/security.md); an enforcer that runs on the nodes outside Kubernetes cannot be seen from the API, and then this warning is wrong")
		}
		return doctor.Okay("skiff.yaml turns NetworkPolicies off (network.policy), and no known enforcer runs in " + where)
	}}
}
