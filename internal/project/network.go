package project

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Network is who may reach the project's workloads and whom they may
// reach (skiff.yaml `network`, docs/manifest.md). With policy on (the
// default) each workload gets a NetworkPolicy: ingress only from the
// workloads that depend on it, the KEDA interceptor (scaled workloads),
// the gateway (exposed workloads) and AllowFrom; egress open unless Egress
// is set.
type Network struct {
	// Policy is PolicyOn ("" too) or PolicyOff.
	Policy string `json:"policy,omitempty" yaml:"policy,omitempty"`
	// AllowFrom admits more sources to every workload: a metrics
	// scraper's namespace, an Ingress controller's pods.
	AllowFrom []Peer `json:"allowFrom,omitempty" yaml:"allowFrom,omitempty"`
	// GatewayNamespace is where the pods that carry public traffic to
	// exposed workloads run: the Gateway's namespace when left out; an
	// Ingress needs it (its controller's namespace).
	GatewayNamespace string `json:"gatewayNamespace,omitempty" yaml:"gatewayNamespace,omitempty"`
	// Egress, when written (even empty), limits what the workloads may
	// reach to DNS, their dependencies, the bus and these.
	Egress []Peer `json:"egress,omitempty" yaml:"egress,omitempty"`
}

// Peer is one side of a connection a NetworkPolicy allows: pods (of a
// namespace, or matching labels, or both) or an address block, on ports
// (all when none).
type Peer struct {
	Namespace string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Pods      map[string]string `json:"pods,omitempty" yaml:"pods,omitempty"`
	CIDR      string            `json:"cidr,omitempty" yaml:"cidr,omitempty"`
	Ports     []int             `json:"ports,omitempty" yaml:"ports,omitempty"`
}

// MarshalYAML writes policy unquoted, as people write it, and a network
// of only a policy on one line: `network: {policy: on}`.
func (n Network) MarshalYAML() (any, error) {
	type plain Network
	var node yaml.Node
	if err := node.Encode(plain(n)); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "policy" {
			node.Content[i+1].Style, node.Content[i+1].Tag = 0, ""
		}
	}
	if len(node.Content) == 2 && n.Policy != "" {
		node.Style = yaml.FlowStyle
	}
	return &node, nil
}

// Values of network.policy.
const (
	PolicyOn  = "on"
	PolicyOff = "off"
)

const policyHint = "use `policy: on` (a NetworkPolicy per workload, the default) or `policy: off`"

// NetworkPolicy reports whether the workloads get NetworkPolicies.
func (p *Project) NetworkPolicy() bool {
	return p.Network == nil || p.Network.Policy != PolicyOff
}

// EgressLimited reports whether network.egress limits what the workloads
// may reach.
func (p *Project) EgressLimited() bool {
	return p.NetworkPolicy() && p.Network != nil && p.Network.Egress != nil
}

// Dependents lists the workloads of p that depend on workload, in
// manifest order: the ones its NetworkPolicy admits.
func (p *Project) Dependents(workload string) []string {
	var out []string
	for _, w := range p.Workloads {
		if slices.Contains(w.DependsOn, workload) {
			out = append(out, w.Name)
		}
	}
	return out
}

// GatewayNamespaceFor is the namespace whose pods carry public traffic to
// an exposed workload ("" when unknown: an Ingress without
// network.gatewayNamespace).
func (p *Project) GatewayNamespaceFor(x *Exposure) string {
	if p.Network != nil && p.Network.GatewayNamespace != "" {
		return p.Network.GatewayNamespace
	}
	if x.Gateway != nil {
		return x.Gateway.Namespace
	}
	return ""
}

// BusPeer is where the project's bus is, for a NetworkPolicy's egress:
// see ServicePeer (NATS's port 4222 when the URL names none).
func BusPeer(bus string) (peer Peer, ok bool) { return ServicePeer(bus, 4222) }

// ServicePeer is where a URL leads, as a NetworkPolicy peer: the namespace
// of a Service addressed by name (svc.ns, svc.ns.svc,
// svc.ns.svc.cluster.local) or the address of a host given by IP, with
// the URL's port (defaultPort when it names none). ok is false when its
// host is a name outside the cluster.
func ServicePeer(rawURL string, defaultPort int) (peer Peer, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return Peer{}, false
	}
	port := defaultPort
	if s := u.Port(); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			port = n
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return Peer{CIDR: netip.PrefixFrom(a, a.BitLen()).String(), Ports: []int{port}}, true
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(labels) == 2 || len(labels) >= 3 && labels[2] == "svc" {
		return Peer{Namespace: labels[1], Ports: []int{port}}, true
	}
	return Peer{}, false
}

// checkNetwork checks network at path at (the top level's or an
// environment's).
func checkNetwork(at string, n *Network, add func(path, msg, hint string)) {
	if n == nil {
		return
	}
	if n.Policy != "" && n.Policy != PolicyOn && n.Policy != PolicyOff {
		add(at+".policy", fmt.Sprintf("%q is not on or off", n.Policy), policyHint)
	}
	if n.GatewayNamespace != "" {
		if why := ValidName(n.GatewayNamespace); why != "" {
			add(at+".gatewayNamespace", why, nameHint)
		}
	}
	for i, peer := range n.AllowFrom {
		checkPeer(fmt.Sprintf("%s.allowFrom[%d]", at, i), peer, add)
	}
	for i, peer := range n.Egress {
		checkPeer(fmt.Sprintf("%s.egress[%d]", at, i), peer, add)
	}
}

const peerHint = "write {namespace: NS}, {pods: {LABEL: VALUE}}, both, or {cidr: 10.0.0.0/8}; add ports: [PORT] to allow only those"

func checkPeer(at string, peer Peer, add func(path, msg, hint string)) {
	switch {
	case peer.CIDR != "" && (peer.Namespace != "" || len(peer.Pods) > 0):
		add(at, "names both a cidr and pods or a namespace", "write one entry per kind of peer: "+peerHint)
	case peer.CIDR == "" && peer.Namespace == "" && len(peer.Pods) == 0:
		add(at, "names no namespace, pods or cidr", peerHint)
	}
	if peer.Namespace != "" {
		if why := ValidName(peer.Namespace); why != "" {
			add(at+".namespace", why, nameHint)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(peer.Pods)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			add(at+".pods."+k, "is not a label name: "+errs[0], "use a Kubernetes label such as app.kubernetes.io/name")
		} else if errs := validation.IsValidLabelValue(peer.Pods[k]); len(errs) > 0 {
			add(at+".pods."+k, fmt.Sprintf("%q is not a label value: %s", peer.Pods[k], errs[0]), "use at most 63 letters, digits, '-', '_' or '.'")
		}
	}
	if peer.CIDR != "" {
		if _, _, err := net.ParseCIDR(peer.CIDR); err != nil {
			add(at+".cidr", fmt.Sprintf("%q is not a CIDR block", peer.CIDR), "use an address and prefix length such as 10.0.0.0/8 or 203.0.113.7/32")
		}
	}
	for j, port := range peer.Ports {
		if port < 1 || port > 65535 {
			add(fmt.Sprintf("%s.ports[%d]", at, j), fmt.Sprintf("%d is out of range", port), "use a port from 1 to 65535")
		}
	}
}

// checkNetworkIn checks what the project, resolved for environment at
// ("" for the top level), makes of its NetworkPolicies: each exposed
// workload's gateway must be known.
func (p *Project) checkNetworkIn(at string, add func(path, msg, hint string)) {
	if !p.NetworkPolicy() {
		return
	}
	field := "network.gatewayNamespace"
	if at != "" {
		field = at + ".network.gatewayNamespace"
	}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		if !w.Expose.On() || w.Expose.Ingress == nil {
			continue
		}
		if x := p.Exposure(w); x != nil && p.GatewayNamespaceFor(x) == "" {
			add(fmt.Sprintf("workloads[%d].expose.ingress", i), "is refused by the workload's NetworkPolicy: skiff does not know where the Ingress controller's pods run",
				"set "+field+" to their namespace (e.g. ingress-nginx), or `network: {policy: off}`")
		}
	}
}

// checkNetworks checks network at the top level and in each environment.
func (p *Project) checkNetworks(add func(path, msg, hint string)) {
	said := map[string]bool{}
	once := func(path, msg, hint string) {
		if !said[path+"\x00"+msg] {
			said[path+"\x00"+msg] = true
			add(path, msg, hint)
		}
	}
	checkNetwork("network", p.Network, once)
	p.checkNetworkIn("", once)
	for _, n := range p.EnvironmentNames() {
		e := p.Environments[n]
		checkNetwork("environments."+n+".network", e.Network, once)
		if q, err := p.ForEnv(n); err == nil {
			q.checkNetworkIn("environments."+n, once)
		}
	}
}

// networkWarnings are what a limited egress cannot express: a bus outside
// the cluster by name, the API server live config watches through.
func (p *Project) networkWarnings() []*FieldError {
	if !p.EgressLimited() {
		return nil
	}
	var out []*FieldError
	hasCIDR := slices.ContainsFunc(p.Network.Egress, func(e Peer) bool { return e.CIDR != "" })
	if p.Events != nil && p.Events.Bus != "" {
		if _, ok := BusPeer(p.Events.Bus); !ok && !hasCIDR {
			out = append(out, &FieldError{Path: "network.egress", Msg: fmt.Sprintf("does not let the workloads reach the bus %s: skiff adds a bus by Service name or IP only", p.Events.Bus),
				Hint: "add its addresses, e.g. {cidr: 203.0.113.7/32, ports: [4222]}"})
		}
	}
	for i, w := range p.Workloads {
		if w.LiveConfig && !hasCIDR {
			out = append(out, &FieldError{Path: fmt.Sprintf("workloads[%d].liveConfig", i), Msg: "watches its ConfigMap through the API server, which network.egress does not let it reach",
				Hint: "add the API server's address, e.g. {cidr: 203.0.113.1/32, ports: [6443]} (`kubectl get endpoints kubernetes`)"})
		}
	}
	return out
}

// mergeNetwork lays an environment's network over the top level's: each
// field written replaces the top level's.
func mergeNetwork(top, env *Network) *Network {
	if env == nil {
		return top
	}
	out := Network{}
	if top != nil {
		out = *top
	}
	if env.Policy != "" {
		out.Policy = env.Policy
	}
	if env.AllowFrom != nil {
		out.AllowFrom = env.AllowFrom
	}
	if env.GatewayNamespace != "" {
		out.GatewayNamespace = env.GatewayNamespace
	}
	if env.Egress != nil {
		out.Egress = env.Egress
	}
	return &out
}
