package chart

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/project"
)

const networkDoc = `apiVersion: skiff.dev/v1alpha1
name: shop
domain: example.com
gateway: {name: edge, namespace: infra}
events: {bus: nats://nats.bus.svc.cluster.local:4222, relayImage: "127.0.0.1:5000/relay@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
network:
  allowFrom:
    - namespace: monitoring
      ports: [9090]
workloads:
  - name: front
    kind: service
    lang: go
    expose: {tls: off}
    dependsOn: [orders]
  - name: orders
    kind: service
    lang: go
    port: 3000
    dependsOn: [thumbs]
  - name: thumbs
    kind: function
    lang: go
    scale: {min: 0}
  - name: audit
    kind: function
    lang: go
    dependsOn: [orders]
    triggers: [{event: order.created}]
environments:
  open:
    network: {policy: off}
  locked:
    network:
      egress:
        - cidr: 203.0.113.0/24
          ports: [443]
  ingress:
    network: {gatewayNamespace: ingress-nginx}
  scraped:
    metrics: {prometheus: "http://prometheus.observe.svc:9090"}
`

// networkPolicy renders workload in env and returns its NetworkPolicy
// (nil when none), decoded strictly into the API's type.
func networkPolicy(t *testing.T, env, workload string) *networkingv1.NetworkPolicy {
	t.Helper()
	p, err := project.Parse([]byte(networkDoc))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.ForEnv(env); err != nil {
		t.Fatal(err)
	}
	objs := splitObjects(t, renderRelease(t, p, workload, "shop", nil))
	var found *networkingv1.NetworkPolicy
	for key, doc := range objs {
		if !strings.HasPrefix(key, "NetworkPolicy/") {
			continue
		}
		if found != nil {
			t.Fatalf("%s: more than one NetworkPolicy", workload)
		}
		found = &networkingv1.NetworkPolicy{}
		if err := yaml.UnmarshalStrict([]byte(doc), found); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
	}
	return found
}

// peers describes the sources (or destinations) of rules, one string per
// rule: "pods{k=v} ns=N cidr=C ports=[...]".
func peers(t *testing.T, from [][]networkingv1.NetworkPolicyPeer, ports [][]networkingv1.NetworkPolicyPort) []string {
	t.Helper()
	var out []string
	for i, ps := range from {
		var parts []string
		for _, pe := range ps {
			if pe.PodSelector != nil {
				var kv []string
				for k, v := range pe.PodSelector.MatchLabels {
					kv = append(kv, k+"="+v)
				}
				slices.Sort(kv)
				parts = append(parts, "pods{"+strings.Join(kv, ",")+"}")
			}
			if pe.NamespaceSelector != nil {
				parts = append(parts, "ns="+pe.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
			}
			if pe.IPBlock != nil {
				parts = append(parts, "cidr="+pe.IPBlock.CIDR)
			}
		}
		for _, po := range ports[i] {
			parts = append(parts, string(*po.Protocol)+"/"+po.Port.String())
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func ingressOf(t *testing.T, np *networkingv1.NetworkPolicy) []string {
	var from [][]networkingv1.NetworkPolicyPeer
	var ports [][]networkingv1.NetworkPolicyPort
	for _, r := range np.Spec.Ingress {
		from = append(from, r.From)
		ports = append(ports, r.Ports)
	}
	return peers(t, from, ports)
}

func egressOf(t *testing.T, np *networkingv1.NetworkPolicy) []string {
	var to [][]networkingv1.NetworkPolicyPeer
	var ports [][]networkingv1.NetworkPolicyPort
	for _, r := range np.Spec.Egress {
		to = append(to, r.To)
		ports = append(ports, r.Ports)
	}
	return peers(t, to, ports)
}

func TestNetworkPolicyIngress(t *testing.T) {
	for _, tc := range []struct {
		env, workload string
		want          []string
	}{
		// Exposed: the Gateway's namespace; nobody depends on it.
		{"", "front", []string{"ns=infra", "ns=monitoring TCP/9090"}},
		// Its dependents, each by its labels in the project.
		{"", "orders", []string{
			"pods{app.kubernetes.io/name=front,app.kubernetes.io/part-of=shop}",
			"pods{app.kubernetes.io/name=audit,app.kubernetes.io/part-of=shop}",
			"ns=monitoring TCP/9090"}},
		// Scaled: the interceptor's namespace, and orders.
		{"", "thumbs", []string{"pods{app.kubernetes.io/name=orders,app.kubernetes.io/part-of=shop}", "ns=keda", "ns=monitoring TCP/9090"}},
		// Event-driven: its relay pulls, nothing needs to reach it.
		{"", "audit", []string{"ns=monitoring TCP/9090"}},
		{"ingress", "front", []string{"ns=ingress-nginx", "ns=monitoring TCP/9090"}},
		// The Prometheus skiff reads (metrics.prometheus) scrapes it.
		{"scraped", "audit", []string{"ns=monitoring TCP/9090", "ns=observe"}},
	} {
		np := networkPolicy(t, tc.env, tc.workload)
		if np == nil {
			t.Fatalf("%s/%s: no NetworkPolicy", tc.env, tc.workload)
		}
		if got := ingressOf(t, np); !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s ingress:\n got %q\nwant %q", tc.env, tc.workload, got, tc.want)
		}
		if got := np.Spec.PolicyTypes; !slices.Equal(got, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("%s/%s: policyTypes %v; egress must stay open", tc.env, tc.workload, got)
		}
		if sel := np.Spec.PodSelector.MatchLabels; sel["app.kubernetes.io/instance"] != "shop-"+tc.workload || sel["app.kubernetes.io/name"] != tc.workload {
			t.Errorf("%s/%s: podSelector %v", tc.env, tc.workload, sel)
		}
	}
}

func TestNetworkPolicyDeniesAllWithoutPeers(t *testing.T) {
	p, err := project.Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads: [{name: w, kind: service, lang: go}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	objs := splitObjects(t, renderRelease(t, p, "w", "a", nil))
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(objs["NetworkPolicy/w"]), &np); err != nil {
		t.Fatal(err)
	}
	if np.Spec.Ingress == nil || len(np.Spec.Ingress) != 0 || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress"}) {
		t.Errorf("a workload nobody calls: %+v; want ingress: [] (deny all)", np.Spec)
	}
}

func TestNetworkPolicyOff(t *testing.T) {
	for _, w := range []string{"front", "orders", "thumbs", "audit"} {
		if np := networkPolicy(t, "open", w); np != nil {
			t.Errorf("policy off: %s has a NetworkPolicy", w)
		}
	}
	// And from the chart's values alone.
	p, _ := project.Parse([]byte(networkDoc))
	objs := splitObjects(t, renderRelease(t, p, "orders", "shop", map[string]any{"network": map[string]any{"policy": false}}))
	for k := range objs {
		if strings.HasPrefix(k, "NetworkPolicy/") {
			t.Errorf("--set network.policy=false still renders %s", k)
		}
	}
}

func TestNetworkPolicyEgress(t *testing.T) {
	dns := "UDP/53 TCP/53"
	resolver := "pods{k8s-app=kube-dns} ns=kube-system"
	for _, tc := range []struct {
		workload string
		want     []string
	}{
		// orders → thumbs, a scaled function: through the interceptor.
		{"orders", []string{resolver, dns, "ns=keda", "ns=bus TCP/4222", "cidr=203.0.113.0/24 TCP/443"}},
		// front → orders on the port its Service leads to (a NetworkPolicy
		// sees the pod's): the metrics proxy's, since the project knows a
		// relay image.
		{"front", []string{resolver, dns, "pods{app.kubernetes.io/name=orders,app.kubernetes.io/part-of=shop} TCP/8012", "ns=bus TCP/4222", "cidr=203.0.113.0/24 TCP/443"}},
		{"thumbs", []string{resolver, dns, "ns=bus TCP/4222", "cidr=203.0.113.0/24 TCP/443"}},
	} {
		np := networkPolicy(t, "locked", tc.workload)
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) {
			t.Errorf("%s: policyTypes %v", tc.workload, np.Spec.PolicyTypes)
		}
		if got := egressOf(t, np); !slices.Equal(got, tc.want) {
			t.Errorf("%s egress:\n got %q\nwant %q", tc.workload, got, tc.want)
		}
	}
}
