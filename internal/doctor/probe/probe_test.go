package probe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/registrytest"
	"github.com/skiffdev/skiff/internal/target"
)

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	// A registry that wants user "ci" with password "right" for anything.
	repo, err := name.NewRepository(registrytest.BasicAuth(t, "ci", "right")+"/shop/orders", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	from := func(string) string { return "a test keychain" }
	for _, tc := range []struct {
		name   string
		kc     authn.Keychain
		source func(string) string
		status doctor.Status
		want   string
	}{
		{"right password", keychain{"ci", "right"}, from, doctor.OK, "may push to " + repo.String() + " (credentials: a test keychain)"},
		{"wrong password", keychain{"ci", "wrong"}, from, doctor.Fail, "refused the credentials from a test keychain for a push"},
		{"no credentials", authn.NewMultiKeychain(), func(string) string { return "" }, doctor.Fail, "wants credentials to push to " + repo.String() + ", and there are none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Registry(repo, tc.kc, http.DefaultTransport, tc.source).Run(ctx)
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
				t.Errorf("result = %+v, want %s with %q", r, tc.status, tc.want)
			}
			if tc.status == doctor.Fail && !strings.Contains(r.Fix, "docker login "+repo.RegistryStr()) {
				t.Errorf("fix = %q", r.Fix)
			}
		})
	}
	// Nothing listens: said as unreachable.
	gone, _ := name.NewRepository("127.0.0.1:1/shop/orders", name.Insecure)
	if r := Registry(gone, authn.NewMultiKeychain(), http.DefaultTransport, from).Run(ctx); r.Status != doctor.Fail || !strings.Contains(r.Detail, "cannot reach 127.0.0.1:1") {
		t.Errorf("unreachable registry = %+v", r)
	}
}

type keychain struct{ user, pass string }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestClusterChecks(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"kubernetes.io/arch": "amd64"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"kubernetes.io/arch": "arm64"}}},
	)
	// The user may do anything but delete secrets.
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = !(ra.Resource == "secrets" && ra.Verb == "delete") && ra.Namespace == "shop"
		return true, r, nil
	})
	c := &Cluster{Clientset: cs, Host: "https://k", Context: "test", Namespace: "shop", Ping: func(context.Context) error { return nil }}

	needs := []doctor.Access{{Resource: "secrets", Verb: "get", Namespaced: true}, {Resource: "secrets", Verb: "delete", Namespaced: true}, {Resource: "pods/portforward", Verb: "create", Namespaced: true}}
	// An access in another namespace is asked there (a Gateway's).
	gw := doctor.Access{Group: "gateway.networking.k8s.io", Resource: "gateways", Verb: "patch", Namespaced: true, Namespace: "infra"}
	if r := c.RBAC([]doctor.Access{needs[0], gw}).Run(ctx); r.Status != doctor.Fail || r.Detail != "may not patch gateways.gateway.networking.k8s.io in namespace infra" {
		t.Errorf("rbac in another namespace = %+v", r)
	}
	if r := c.RBAC(needs).Run(ctx); r.Status != doctor.Fail || r.Detail != "may not delete secrets in namespace shop" {
		t.Errorf("rbac = %+v", r)
	}
	if r := c.RBAC(needs[:1]).Run(ctx); r.Status != doctor.OK {
		t.Errorf("rbac allowed = %+v", r)
	}
	if r := c.PodSecurity().Run(ctx); r.Status != doctor.OK || !strings.Contains(r.Detail, "enforces restricted") {
		t.Errorf("pod security = %+v", r)
	}
	for _, tc := range []struct {
		platforms []string
		status    doctor.Status
		want      string
	}{
		{[]string{"linux/amd64", "linux/arm64"}, doctor.OK, "nodes: 1 amd64, 1 arm64"},
		{[]string{"linux/amd64"}, doctor.Warn, "pods scheduled on arm64 nodes would not start"},
		{[]string{"linux/riscv64"}, doctor.Fail, "no node can run the images"},
	} {
		if r := c.Architectures(tc.platforms).Run(ctx); r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("architectures %v = %+v", tc.platforms, r)
		}
	}
	if r := c.Engines(func(context.Context) error { return fmt.Errorf("no KEDA") }).Run(ctx); r.Status != doctor.Fail || r.Detail != "no KEDA" {
		t.Errorf("engines = %+v", r)
	}
	for _, tc := range []struct {
		f      target.EdgeFindings
		status doctor.Status
		want   string
	}{
		{target.EdgeFindings{Found: []string{"Gateway infra/edge is programmed"}}, doctor.OK, "Gateway infra/edge is programmed"},
		{target.EdgeFindings{Found: []string{"x"}, Warnings: []string{"serves its own certificate"}}, doctor.Warn, "serves its own certificate"},
		{target.EdgeFindings{Warnings: []string{"w"}, Problems: []string{"there is no Gateway infra/edge"}}, doctor.Fail, "there is no Gateway infra/edge"},
		{target.EdgeFindings{}, doctor.OK, "Ingresses"},
	} {
		if r := c.Edge(func(context.Context) (*target.EdgeFindings, error) { return &tc.f, nil }).Run(ctx); r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("edge %+v = %+v", tc.f, r)
		}
	}
	for _, tc := range []struct {
		ws          target.WakeSettings
		status      doctor.Status
		detail, fix string
	}{
		{target.WakeSettings{QueueTick: target.DefaultQueueTick, ConnectTimeout: target.DefaultConnectTimeout, ProxyMode: "iptables", ProxySync: time.Second}, doctor.Warn,
			"scaler reads the requests its interceptors hold every 500ms",
			"KEDA_HTTP_QUEUE_TICK_DURATION=100ms on the add-on's scaler Deployment, and set KEDA_HTTP_CONNECT_TIMEOUT=100ms on the add-on's interceptor Deployment, and set iptables.minSyncPeriod: 100ms"},
		{target.WakeSettings{QueueTick: 100 * time.Millisecond, ConnectTimeout: 100 * time.Millisecond, ProxyMode: "nftables", ProxySync: time.Second}, doctor.Warn,
			"kube-proxy (nftables) programs a woken pod's Service address at most every 1s", "set nftables.minSyncPeriod: 100ms in kube-proxy's configuration: each wake"},
		{target.WakeSettings{QueueTick: 100 * time.Millisecond, ConnectTimeout: 100 * time.Millisecond, ProxySyncWhy: "no kube-system/kube-proxy ConfigMap"}, doctor.OK,
			"reads the held requests every 100ms; its interceptor tries a connection again after 100ms; kube-proxy's minSyncPeriod: not known (no kube-system/kube-proxy ConfigMap)", ""},
		{target.WakeSettings{QueueTick: 100 * time.Millisecond, ConnectTimeout: 100 * time.Millisecond, ProxyMode: "iptables", ProxySync: 100 * time.Millisecond}, doctor.OK,
			"kube-proxy (iptables) programs Service addresses within 100ms", ""},
		{target.WakeSettings{QueueTick: 100 * time.Millisecond, ConnectTimeout: time.Second, ProxyMode: "iptables", ProxySync: 100 * time.Millisecond}, doctor.Warn,
			"interceptor waits up to 1s for a connection attempt", "set KEDA_HTTP_CONNECT_TIMEOUT=100ms on the add-on's interceptor Deployment: each wake"},
		{target.WakeSettings{QueueTickWhy: "may not list Deployments in keda", ConnectTimeoutWhy: "may not list Deployments in keda", ProxySyncWhy: "may not read ConfigMap kube-system/kube-proxy"}, doctor.Skip,
			"not known (may not list Deployments in keda)", ""},
	} {
		r := c.Wake(func(context.Context) target.WakeSettings { return tc.ws }).Run(ctx)
		if r.Status != tc.status || !strings.Contains(r.Detail, tc.detail) || !strings.Contains(r.Fix, tc.fix) || (tc.fix == "") != (r.Fix == "") {
			t.Errorf("wake %+v = %+v", tc.ws, r)
		}
	}
	if r := c.Bus(func(context.Context) (string, error) { return "", fmt.Errorf("the bus has no JetStream") }).Run(ctx); r.Status != doctor.Fail ||
		r.Detail != "the bus has no JetStream" || !strings.Contains(r.Fix, "--jetstream") {
		t.Errorf("bus = %+v", r)
	}
	if r := c.Bus(func(context.Context) (string, error) { return "JetStream on", nil }).Run(ctx); r.Status != doctor.OK || r.Detail != "JetStream on" {
		t.Errorf("bus = %+v", r)
	}

	// A cluster that does not answer is said once; the rest skip.
	pings := 0
	down := &Cluster{Clientset: cs, Namespace: "shop", Ping: func(context.Context) error { pings++; return errors.New("cannot reach the cluster") }}
	rs := doctor.Run(ctx, time.Second, []doctor.Check{down.Reach(), down.RBAC(needs), down.PodSecurity(), down.Architectures([]string{"linux/amd64"})})
	if rs[0].Status != doctor.Fail || rs[0].Detail != "cannot reach the cluster" {
		t.Errorf("reach = %+v", rs[0])
	}
	for _, r := range rs[1:] {
		if r.Status != doctor.Skip {
			t.Errorf("%s on a cluster that does not answer = %+v", r.Check, r)
		}
	}
	if pings != 1 {
		t.Errorf("pinged %d times, want once", pings)
	}
}

func TestPullAccess(t *testing.T) {
	ctx := context.Background()
	open := func(context.Context) (bool, error) { return true, nil }
	closed := func(context.Context) (bool, error) { return false, nil }
	broken := func(context.Context) (bool, error) { return false, errors.New("timeout") }
	have := func() error { return nil }
	none := func() error { return errors.New("no credentials") }
	for _, tc := range []struct {
		name, mode string
		anon       func(context.Context) (bool, error)
		creds      func() error
		status     doctor.Status
		want       string
	}{
		{"public", "auto", open, none, doctor.OK, "pods need no pull secret"},
		{"private with credentials", "auto", closed, have, doctor.OK, "deploy keeps a pull secret"},
		{"private without credentials", "auto", closed, none, doctor.Fail, "no credentials to make it from"},
		{"always a secret", "pull-secret", open, none, doctor.Fail, "no credentials to make it from"},
		{"nodes on their own", "none", closed, none, doctor.Skip, "registryAuth: none"},
		{"cannot ask", "auto", broken, have, doctor.Warn, "could not ask"},
	} {
		r := PullAccess("reg.example/shop/orders", tc.mode, tc.anon, tc.creds).Run(ctx)
		if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
}

// The access doctor asks for follows what the project's chart renders.
func TestNeedsFollowTheRenderedChart(t *testing.T) {
	ctx := context.Background()
	ns := func(group, resource, verb string) doctor.Access {
		return doctor.Access{Group: group, Resource: resource, Verb: verb, Namespaced: true}
	}
	scaledObjects := ns("keda.sh", "scaledobjects", "create")
	routes := ns("http.keda.sh", "interceptorroutes", "create")
	cronJobs := ns("batch", "cronjobs", "create")
	roles := ns("rbac.authorization.k8s.io", "roles", "create")
	watchConfig := ns("", "configmaps", "watch")
	for _, tc := range []struct {
		name, fields string
		want, not    []doctor.Access
	}{
		{"plain", "", []doctor.Access{ns("apps", "deployments", "create"), ns("", "services", "create")},
			[]doctor.Access{scaledObjects, routes, cronJobs, roles, watchConfig}},
		{"scale to zero", "scale: {min: 0, max: 3}", []doctor.Access{scaledObjects, routes},
			[]doctor.Access{cronJobs, roles}},
		{"live config", "liveConfig: true\n    config: {A: b}", []doctor.Access{roles, watchConfig},
			[]doctor.Access{scaledObjects}},
		{"schedule", "triggers: [{schedule: '@hourly'}]", []doctor.Access{cronJobs},
			[]doctor.Access{scaledObjects}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Needs(ctx, doctor.Config{Project: renderable(t, tc.fields), Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.want {
				if !slices.Contains(got, a) {
					t.Errorf("no %v in %v", a, got)
				}
			}
			for _, a := range tc.not {
				if slices.Contains(got, a) {
					t.Errorf("%v asked for", a)
				}
			}
		})
	}
}

// renderable is a project of one workload with the given fields of
// skiff.yaml (YAML at the workload's indentation).
func renderable(t *testing.T, fields string) *project.Project {
	t.Helper()
	src := "apiVersion: skiff.dev/v1alpha1\nname: shop\nregistry: registry.example.com/acme\n"
	if strings.Contains(fields, "triggers") {
		src += "events:\n  bus: nats://bus.example:4222\n  relayImage: registry.example.com/acme/relay@sha256:" + strings.Repeat("1", 64) + "\n"
	}
	src += "workloads:\n  - name: orders\n    kind: function\n    lang: go\n"
	if fields != "" {
		src += "    " + fields + "\n"
	}
	p, err := project.Parse([]byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return p
}

// On a cluster where the user may not touch KEDA's objects, doctor fails
// a project with a scaled workload and passes one without.
func TestPermissionsOfTheRenderedKinds(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	var asked []string
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		mu.Lock()
		asked = append(asked, ra.Verb+" "+ra.Resource+"."+ra.Group)
		mu.Unlock()
		r.Status.Allowed = !strings.HasSuffix(ra.Group, "keda.sh")
		return true, r, nil
	})
	c := &Cluster{Clientset: cs, Host: "https://k", Context: "test", Namespace: "shop", Ping: func(context.Context) error { return nil }}

	plain, err := Needs(ctx, doctor.Config{Project: renderable(t, ""), Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.RBAC(plain).Run(ctx); r.Status != doctor.OK {
		t.Errorf("plain project: %+v", r)
	}
	if slices.ContainsFunc(asked, func(s string) bool { return strings.HasSuffix(s, "keda.sh") }) {
		t.Errorf("asked about KEDA for a project without scale: %v", asked)
	}
	scaled, err := Needs(ctx, doctor.Config{Project: renderable(t, "scale: {min: 0, max: 3}"), Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := c.RBAC(scaled).Run(ctx)
	if r.Status != doctor.Fail || !strings.Contains(r.Detail, "create scaledobjects.keda.sh") || !strings.Contains(r.Detail, "create interceptorroutes.http.keda.sh") {
		t.Errorf("scaled project: %+v", r)
	}
}

var mu sync.Mutex

func TestListenerAccess(t *testing.T) {
	patch := doctor.Access{Group: "gateway.networking.k8s.io", Resource: "gateways", Verb: "patch", Namespaced: true, Namespace: "infra"}
	p := &project.Project{Name: "shop", Namespace: "shop", Workloads: []project.Workload{{Name: "front", Expose: &project.Expose{Host: "front.example.com"}}},
		Gateway: &project.Gateway{Name: "edge", Namespace: "infra"}, TLS: &project.TLS{Mode: project.TLSAuto, Issuer: "le"}}
	if len(listenerAccess(p)) != 0 {
		t.Error("a project without addListeners is checked for patching the Gateway")
	}
	p.Gateway.AddListeners = true
	if got := listenerAccess(p); !slices.Contains(got, patch) {
		t.Errorf("a project with addListeners: %v, want %v", got, patch)
	}
}

func TestNetworkPolicyEnforcement(t *testing.T) {
	ctx := context.Background()
	pod := func(ns, name string, labels map[string]string, phase corev1.PodPhase, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Status: corev1.PodStatus{Phase: phase}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	run := func(on bool, objs ...runtime.Object) doctor.Result {
		c := &Cluster{Clientset: fake.NewClientset(objs...), Namespace: "shop", Ping: func(context.Context) error { return nil }}
		return c.NetworkPolicy(on).Run(ctx)
	}
	calico := pod("calico-system", "calico-node-x1", map[string]string{"k8s-app": "calico-node"}, corev1.PodRunning)
	if r := run(true, calico); r.Status != doctor.OK || !strings.Contains(r.Detail, "Calico (pod calico-system/calico-node-x1)") {
		t.Errorf("calico = %+v", r)
	}
	// Not running, or a CNI without its policy agent: not an enforcer.
	for name, objs := range map[string][]runtime.Object{
		"nothing":           nil,
		"pending calico":    {pod("kube-system", "calico-node-x", map[string]string{"k8s-app": "calico-node"}, corev1.PodPending)},
		"aws without agent": {pod("kube-system", "aws-node-1", map[string]string{"k8s-app": "aws-node"}, corev1.PodRunning, "aws-node")},
		"coredns":           {pod("kube-system", "coredns-1", map[string]string{"k8s-app": "kube-dns"}, corev1.PodRunning)},
	} {
		if r := run(true, objs...); r.Status != doctor.Warn || !strings.Contains(r.Detail, "found no NetworkPolicy enforcer running in any namespace") || !strings.Contains(r.Detail, "kube-router") {
			t.Errorf("%s = %+v", name, r)
		}
	}
	if r := run(true, pod("kube-system", "aws-node-1", map[string]string{"k8s-app": "aws-node"}, corev1.PodRunning, "aws-node", "aws-network-policy-agent")); r.Status != doctor.OK {
		t.Errorf("aws with agent = %+v", r)
	}
	if r := run(false); r.Status != doctor.OK || !strings.Contains(r.Detail, "turns NetworkPolicies off") {
		t.Errorf("policy off = %+v", r)
	}

	// May list pods in kube-system only: it says where it looked.
	cs := fake.NewClientset(pod("kube-system", "kube-router-a", map[string]string{"k8s-app": "kube-router"}, corev1.PodRunning))
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "" {
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("no"))
		}
		return false, nil, nil
	})
	c := &Cluster{Clientset: cs, Namespace: "shop", Ping: func(context.Context) error { return nil }}
	if r := c.NetworkPolicy(true).Run(ctx); r.Status != doctor.OK || !strings.Contains(r.Detail, "kube-router (pod kube-system/kube-router-a)") {
		t.Errorf("kube-system only = %+v", r)
	}
}
