package doctor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
func unreachable() Result { return skip("the cluster does not answer (see the cluster check)") }

// Reach checks the cluster answers and says its version, context and
// namespace.
func (c *Cluster) Reach() Check {
	return Check{Name: "cluster", Run: func(ctx context.Context) Result {
		if err := c.reach(ctx); err != nil {
			return fail(err.Error(), "start the cluster, or pick another with --context or --kubeconfig")
		}
		v, err := c.Clientset.Discovery().ServerVersion()
		if err != nil {
			return fail(fmt.Sprintf("%s answers, but not with its version: %v", c.Host, err), "check the kubeconfig's server address")
		}
		return ok(fmt.Sprintf("Kubernetes %s at %s, context %q, namespace %s", v.GitVersion, c.Host, c.Context, c.Namespace))
	}}
}

// Access is one thing deploy does: verb on resource of group.
type Access struct {
	Group, Resource, Verb string
	Namespaced            bool
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	return a.Verb + " " + r
}

// RBAC asks the API server, with SelfSubjectAccessReviews, whether the
// kubeconfig's user may do each of needs in the namespace.
func (c *Cluster) RBAC(needs []Access) Check {
	return Check{Name: "permissions", Run: func(ctx context.Context) Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		type answer struct {
			a       Access
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
					ra.Namespace = c.Namespace
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
		var denied []string
		for _, an := range answers {
			if an.err != nil {
				return fail(fmt.Sprintf("asking whether it may %s: %v", an.a, an.err), "check the kubeconfig's credentials")
			}
			if !an.allowed {
				denied = append(denied, an.a.String())
			}
		}
		if len(denied) > 0 {
			return fail(fmt.Sprintf("may not %s in namespace %s", strings.Join(denied, ", "), c.Namespace),
				"ask for a Role (or the edit ClusterRole) in the namespace that allows them, or use another --context")
		}
		return ok(fmt.Sprintf("may do all %d things deploy, status, logs and invoke do in namespace %s", len(needs), c.Namespace))
	}}
}

// PodSecurity says which Pod Security Standard the namespace enforces
// (skiff's pods pass "restricted").
func (c *Cluster) PodSecurity() Check {
	return Check{Name: "pod security", Run: func(ctx context.Context) Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		ns, err := c.Clientset.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return ok(fmt.Sprintf("namespace %s does not exist yet; deploy creates it", c.Namespace))
		case apierrors.IsForbidden(err):
			return skip(fmt.Sprintf("may not read namespace %s", c.Namespace))
		case err != nil:
			return fail(err.Error(), "")
		}
		level := ns.Labels["pod-security.kubernetes.io/enforce"]
		if level == "" {
			return ok(fmt.Sprintf("namespace %s enforces no Pod Security Standard (skiff's pods pass restricted)", c.Namespace))
		}
		return ok(fmt.Sprintf("namespace %s enforces %s (skiff's pods pass restricted)", c.Namespace, level))
	}}
}

// Architectures checks that the images, built for platforms, can run on
// the cluster's nodes.
func (c *Cluster) Architectures(platforms []string) Check {
	return Check{Name: "node architectures", Run: func(ctx context.Context) Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		nodes, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if apierrors.IsForbidden(err) {
			return skip("may not list nodes to see their architectures")
		}
		if err != nil {
			return fail(err.Error(), "")
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
			return warn("the cluster has no nodes", "add nodes: pods cannot run")
		case len(missing) == len(byArch):
			return fail(have+"; no node can run the images", fmt.Sprintf("add linux/%s to build.platforms in skiff.yaml", missing[0]))
		case len(missing) > 0:
			return warn(have+"; pods scheduled on "+strings.Join(missing, ", ")+" nodes would not start",
				fmt.Sprintf("add linux/%s to build.platforms, or keep pods off those nodes", strings.Join(missing, ", linux/")))
		}
		return ok(have)
	}}
}

// Bus checks the project's event bus answers, with JetStream: check
// connects (through the cluster when the bus is one of its Services) and
// says what it found.
func (c *Cluster) Bus(check func(ctx context.Context) (string, error)) Check {
	return Check{Name: "event bus", Run: func(ctx context.Context) Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		detail, err := check(ctx)
		if err != nil {
			return fail(err.Error(), "point events.bus at a NATS server started with JetStream (nats-server --jetstream); docs/events.md")
		}
		return ok(detail)
	}}
}

// Engines checks the serverless engines the project uses; check is
// target.Cluster.CheckEngines for the project's workloads.
func (c *Cluster) Engines(check func(ctx context.Context) error) Check {
	return Check{Name: "serverless engines", Run: func(ctx context.Context) Result {
		if c.reach(ctx) != nil {
			return unreachable()
		}
		if err := check(ctx); err != nil {
			return fail(err.Error(), "docs/serverless.md says what to install")
		}
		return ok("KEDA's ScaledObject API, the KEDA HTTP add-on's InterceptorRoute API and its interceptor are there")
	}}
}
