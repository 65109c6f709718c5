package project

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Expose puts a workload in front of its users at a public URL: an
// HTTPRoute on the project's Gateway (or an Ingress), with TLS.
//
// In skiff.yaml it is `expose: true` (a host made from the domain) or a
// mapping of the fields below.
type Expose struct {
	// Host is the public host name; "" is <workload>.<project>.<domain>.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Path is the path prefix the workload answers under ("/" when left out).
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// TLS replaces the project's (or environment's) tls for this workload.
	TLS *TLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Ingress renders an Ingress of this class instead of an HTTPRoute,
	// for clusters without Gateway API.
	Ingress *Ingress `json:"ingress,omitempty" yaml:"ingress,omitempty"`

	// off is `expose: false`: written, and not exposed.
	off bool
}

// Ingress is the fallback of expose for clusters without Gateway API.
type Ingress struct {
	// ClassName is the IngressClass ("": the cluster's default class).
	ClassName string `json:"className,omitempty" yaml:"className,omitempty"`
}

// Gateway is the Gateway API Gateway that exposed workloads attach their
// routes to: one the cluster already has, usually owned by someone else.
type Gateway struct {
	Name      string `json:"name" yaml:"name"`
	Namespace string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	// Listener is the section of the Gateway to attach to ("": every
	// listener that admits the route).
	Listener string `json:"listener,omitempty" yaml:"listener,omitempty"`
	// AddListeners: deploy adds to the Gateway an HTTPS listener per
	// exposed host with TLS, serving the host's certificate from the
	// workload's namespace, and delete removes it (a server-side apply of
	// skiff's own, which leaves the Gateway's other listeners alone). It
	// needs the right to patch the Gateway.
	AddListeners bool `json:"addListeners,omitempty" yaml:"addListeners,omitempty"`
}

// TLS modes.
const (
	// TLSOff: plain HTTP.
	TLSOff = "off"
	// TLSAuto: cert-manager issues a certificate for the host from Issuer.
	TLSAuto = "auto"
	// TLSSecret: an existing kubernetes.io/tls Secret holds the certificate.
	TLSSecret = "secret"
)

// Kinds of cert-manager issuer.
const (
	IssuerKindCluster   = "ClusterIssuer"
	IssuerKindNamespace = "Issuer"
)

// TLS says where the certificate of a public host comes from. In
// skiff.yaml it is `off`, `auto` (the issuer named at the top level or the
// environment), `{issuer: NAME, kind: ClusterIssuer|Issuer}` (auto, with
// that issuer) or `{secret: NAME}`.
type TLS struct {
	// Mode is TLSOff, TLSAuto or TLSSecret; set by how it is written.
	Mode string `json:"mode,omitempty" yaml:"-"`
	// Issuer is the cert-manager issuer of TLSAuto.
	Issuer string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	// Kind is the kind of Issuer: ClusterIssuer (the default) or Issuer
	// (in the workload's namespace).
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
	// Secret is the Secret of TLSSecret, in the workload's namespace.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
}

// scalarForm is a manifest type that may be written as a single value too
// (`expose: true`, `tls: auto`): checkFields asks it about that value.
type scalarForm interface {
	// scalarProblem says what is wrong with value written alone, and how
	// to fix it ("" when it is fine).
	scalarProblem(value string) (msg, hint string)
}

func (*Expose) scalarProblem(v string) (string, string) {
	if v == "true" || v == "false" {
		return "", ""
	}
	return fmt.Sprintf("%q is not true, false or a mapping", v), "write `expose: true`, or a mapping such as `expose: {host: www.example.com}`"
}

func (*TLS) scalarProblem(v string) (string, string) {
	if v == TLSAuto || v == TLSOff {
		return "", ""
	}
	return fmt.Sprintf("%q is not a TLS setting", v), tlsHint
}

const tlsHint = "use auto, off, {issuer: NAME, kind: ClusterIssuer}, or {secret: NAME}"

// UnmarshalYAML reads `expose: true|false` or the mapping.
func (e *Expose) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return err
		}
		*e = Expose{off: !on}
		return nil
	}
	type plain Expose
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*e = Expose(p)
	return nil
}

// MarshalYAML writes `true` when only the defaults are set.
func (e Expose) MarshalYAML() (any, error) {
	if e.off {
		return false, nil
	}
	if e.Host == "" && e.Path == "" && e.TLS == nil && e.Ingress == nil {
		return true, nil
	}
	type plain Expose
	return plain(e), nil
}

// UnmarshalYAML reads `tls: auto|off` or the mapping.
func (t *TLS) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		// `off` is YAML 1.1's false: the value's text says which it is.
		*t = TLS{Mode: n.Value}
		return nil
	}
	type plain TLS
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = TLS(p)
	switch {
	case t.Secret != "":
		t.Mode = TLSSecret
	default:
		t.Mode = TLSAuto
	}
	return nil
}

// MarshalYAML writes the scalar forms back as they were written.
func (t TLS) MarshalYAML() (any, error) {
	if t.Issuer == "" && t.Secret == "" {
		return t.Mode, nil
	}
	type plain TLS
	return plain(t), nil
}

// On reports whether the workload is exposed (`expose: false` is not).
func (e *Expose) On() bool { return e != nil && !e.off }

// Exposure is where an exposed workload is reached from outside the
// cluster, resolved from its expose and the project's (environment's)
// domain, gateway and tls.
type Exposure struct {
	Host string
	Path string
	// TLS is resolved: Mode is never "", Issuer and Kind are set for auto.
	TLS TLS
	// Gateway is the Gateway of the route; nil with Ingress.
	Gateway *Gateway
	// Ingress: an Ingress instead of an HTTPRoute.
	Ingress *Ingress
}

// URL is the public URL: scheme, host and path.
func (x *Exposure) URL() string {
	scheme := "https"
	if x.TLS.Mode == TLSOff {
		scheme = "http"
	}
	return scheme + "://" + x.Host + x.Path
}

// AddedListener is the name of the listener deploy adds to the Gateway for
// an exposed host (gateway.addListeners); "" when it adds none: without
// TLS, or on an Ingress.
func (x *Exposure) AddedListener(workload, namespace string) string {
	if x.Gateway == nil || !x.Gateway.AddListeners || x.TLS.Mode == TLSOff {
		return ""
	}
	return ListenerName(workload, namespace)
}

// ListenerName is the name of the listener skiff adds to a Gateway for a
// workload of a namespace: skiff-<namespace>-<workload>, at most 63
// characters (a hash of both replaces the end of a longer one).
func ListenerName(workload, namespace string) string {
	n := "skiff-" + namespace + "-" + workload
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(namespace + "/" + workload))
	return strings.TrimRight(n[:54], "-") + "-" + hex.EncodeToString(sum[:4])
}

// CertificateSecret is the Secret cert-manager writes the certificate of
// a workload's host into (tls: auto).
func CertificateSecret(workload string) string { return workload + "-tls" }

// SecretName is the Secret that holds the certificate ("" with tls off).
func (x *Exposure) SecretName(workload string) string {
	switch x.TLS.Mode {
	case TLSAuto:
		return CertificateSecret(workload)
	case TLSSecret:
		return x.TLS.Secret
	}
	return ""
}

// Exposure resolves where w is exposed; nil when it is not. The project
// must be valid (and resolved for its environment).
func (p *Project) Exposure(w *Workload) *Exposure {
	if !w.Expose.On() {
		return nil
	}
	e := w.Expose
	x := &Exposure{Host: e.Host, Path: e.Path, TLS: p.tlsFor(e), Ingress: e.Ingress}
	if x.Host == "" {
		x.Host = DefaultHost(w.Name, p.Name, p.Domain)
	}
	if x.Path == "" {
		x.Path = "/"
	}
	if e.Ingress == nil && p.Gateway != nil {
		g := *p.Gateway
		if g.Namespace == "" {
			g.Namespace = p.Namespace
		}
		x.Gateway = &g
	}
	return x
}

// DefaultHost is the host of `expose: true`: <workload>.<project>.<domain>.
func DefaultHost(workload, project, domain string) string {
	return workload + "." + project + "." + domain
}

// tlsFor resolves a workload's tls: its own, else the project's, else
// off; auto takes its issuer from the project's when it names none.
func (p *Project) tlsFor(e *Expose) TLS {
	t := TLS{Mode: TLSOff}
	if p.TLS != nil {
		t = *p.TLS
	}
	if e.TLS != nil {
		own := *e.TLS
		if own.Mode == TLSAuto && own.Issuer == "" && p.TLS != nil {
			own.Issuer, own.Kind = p.TLS.Issuer, p.TLS.Kind
		}
		t = own
	}
	if t.Mode == TLSAuto && t.Kind == "" {
		t.Kind = IssuerKindCluster
	}
	return t
}

var (
	// A DNS-1123 subdomain, possibly with a leading wildcard label.
	hostname = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// What Gateway API admits in a path prefix.
	pathChars = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$`)
)

const hostHint = "use a DNS name in lowercase, such as api.example.com"

// checkHost says why h is not a host name an HTTPRoute takes ("" when it
// is); wildcard says whether a leading "*." is allowed.
func checkHost(h string, wildcard bool) string {
	switch {
	case len(h) > 253:
		return fmt.Sprintf("%q is longer than 253 characters", h)
	case !hostname.MatchString(h):
		return fmt.Sprintf("%q is not a host name", h)
	case strings.HasPrefix(h, "*.") && !wildcard:
		return fmt.Sprintf("%q is a wildcard", h)
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) > 63 {
			return fmt.Sprintf("%q has a label longer than 63 characters", h)
		}
	}
	return ""
}

// checkPath says why p is not a path prefix a route takes ("" when it is).
func checkPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q does not start with /", p)
	case len(p) > 1024:
		return fmt.Sprintf("%q is longer than 1024 characters", p)
	case !pathChars.MatchString(p):
		return fmt.Sprintf("%q has characters a URL path cannot have unescaped", p)
	case strings.Contains(p, "//"), strings.Contains(p, "/./"), strings.Contains(p, "/../"),
		strings.HasSuffix(p, "/."), strings.HasSuffix(p, "/.."), strings.Contains(strings.ToLower(p), "%2f"):
		return fmt.Sprintf("%q is not a clean path", p)
	}
	return ""
}

// checkTLS checks a tls setting at path at; issuerElsewhere says whether
// `auto` may take its issuer from a higher level.
func checkTLS(at string, t *TLS, issuerElsewhere bool, add func(path, msg, hint string)) {
	if t == nil {
		return
	}
	switch t.Mode {
	case TLSOff, TLSAuto, TLSSecret:
	default:
		add(at, fmt.Sprintf("%q is not a TLS setting", t.Mode), tlsHint)
		return
	}
	if t.Issuer != "" && t.Secret != "" {
		add(at, "names both an issuer and a secret", "choose one: an issuer (cert-manager issues the certificate) or a secret (you provide it)")
	}
	if t.Mode == TLSAuto && t.Issuer == "" && !issuerElsewhere {
		add(at, "is auto and names no cert-manager issuer", "write `tls: {issuer: NAME, kind: ClusterIssuer}` at the top level (or the environment's)")
	}
	if t.Issuer != "" {
		if why := checkSubdomain(t.Issuer); why != "" {
			add(at+".issuer", why, "use the name of a cert-manager Issuer or ClusterIssuer")
		}
	}
	if t.Kind != "" && t.Kind != IssuerKindCluster && t.Kind != IssuerKindNamespace {
		add(at+".kind", describeBad(t.Kind), "use ClusterIssuer or Issuer (one in the workload's namespace)")
	}
	if t.Kind != "" && t.Issuer == "" {
		add(at+".kind", "is set without an issuer", "add issuer: NAME")
	}
	if t.Secret != "" {
		if why := checkSubdomain(t.Secret); why != "" {
			add(at+".secret", why, "use the name of a kubernetes.io/tls Secret in the workload's namespace")
		}
	}
}

// checkSubdomain says why s is not a Kubernetes object name.
func checkSubdomain(s string) string {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, "*") || !hostname.MatchString(s) {
		return fmt.Sprintf("%q is not a Kubernetes name", s)
	}
	return ""
}

func checkGateway(at string, g *Gateway, add func(path, msg, hint string)) {
	if g == nil {
		return
	}
	if why := checkSubdomain(g.Name); why != "" {
		if g.Name == "" {
			why = "is missing"
		}
		add(at+".name", why, "name the Gateway the routes attach to (`kubectl get gateways -A` lists them)")
	}
	if g.Namespace != "" {
		if why := ValidName(g.Namespace); why != "" {
			add(at+".namespace", why, nameHint)
		}
	}
	if g.Listener != "" {
		if why := ValidName(g.Listener); why != "" {
			add(at+".listener", why, "use the name of one of the Gateway's listeners")
		}
	}
}

// checkExpose checks the exposure of every workload of a defaulted
// project, at its top level (env "") and in each environment that changes
// domain, gateway or tls: host names, paths, TLS, where the route goes,
// and that no two workloads take the same host and path.
func (p *Project) checkExpose(report func(path, msg, hint string)) {
	// An environment that changes one thing would repeat the problems of
	// what it does not change.
	said := map[string]bool{}
	add := func(path, msg, hint string) {
		if !said[path+"\x00"+msg] {
			said[path+"\x00"+msg] = true
			report(path, msg, hint)
		}
	}
	if p.Domain != "" {
		if why := checkHost(p.Domain, false); why != "" {
			add("domain", why, hostHint)
		}
	}
	checkGateway("gateway", p.Gateway, add)
	checkTLS("tls", p.TLS, false, add)
	if p.TLS != nil && p.TLS.Mode == TLSAuto && p.TLS.Issuer == "" {
		// Reported above; the workloads' `auto` would repeat it.
		return
	}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		if !w.Expose.On() {
			continue
		}
		at := fmt.Sprintf("workloads[%d].expose", i)
		e := w.Expose
		if e.Host != "" {
			if why := checkHost(e.Host, p.tlsFor(e).Mode != TLSAuto); why != "" {
				hint := hostHint
				if strings.HasPrefix(e.Host, "*.") {
					hint = "cert-manager's ACME http-01 cannot issue a wildcard certificate: use one host, or tls: {secret: NAME} with a wildcard certificate"
				}
				add(at+".host", why, hint)
			}
		}
		if e.Path != "" {
			if why := checkPath(e.Path); why != "" {
				add(at+".path", why, "use a path prefix such as /api")
			}
		}
		// Whether auto has an issuer is known once resolved, below.
		checkTLS(at+".tls", e.TLS, true, add)
		if e.Ingress != nil && e.Ingress.ClassName != "" {
			if why := checkSubdomain(e.Ingress.ClassName); why != "" {
				add(at+".ingress.className", why, "use the name of an IngressClass (`kubectl get ingressclasses`)")
			}
		}
	}
	p.checkExposedIn("", add)
	for _, n := range p.EnvironmentNames() {
		e := p.Environments[n]
		if e.Domain == "" && e.Gateway == nil && e.TLS == nil {
			continue
		}
		if q, err := p.ForEnv(n); err == nil {
			q.checkExposedIn("environments."+n, add)
		}
	}
}

// checkExposedIn checks what the project, resolved for environment at
// ("" for the top level), makes of its exposed workloads.
func (p *Project) checkExposedIn(at string, add func(path, msg, hint string)) {
	field := func(f string) string {
		if at == "" {
			return f
		}
		return at + "." + f
	}
	taken := map[string]int{}
	listened := map[string]int{} // host → the workload whose listener serves it
	for i := range p.Workloads {
		w := &p.Workloads[i]
		if !w.Expose.On() {
			continue
		}
		wat := fmt.Sprintf("workloads[%d].expose", i)
		if w.Expose.Host == "" && p.Domain == "" {
			add(wat, "has no host, and skiff.yaml no domain to make one from",
				"set expose.host, or `domain: example.com` at the top level (or "+field("domain")+")")
			continue
		}
		if w.Expose.Ingress == nil && p.Gateway == nil {
			add(wat, "has no Gateway to attach to", "set `gateway: {name: NAME, namespace: NS}` at the top level (or "+field("gateway")+"), or expose.ingress for an Ingress")
			continue
		}
		x := p.Exposure(w)
		if w.Expose.Host == "" {
			if why := checkHost(x.Host, false); why != "" {
				add(field("domain"), fmt.Sprintf("makes %s's host %s", w.Name, why), "shorten the domain or the names")
			}
		}
		if x.TLS.Mode == TLSAuto && x.TLS.Issuer == "" {
			add(wat+".tls", "is auto and names no cert-manager issuer", "write `tls: {issuer: NAME, kind: ClusterIssuer}` at the top level (or "+field("tls")+")")
		}
		key := x.Host + x.Path
		if j, dup := taken[key]; dup && (at == "" || w.Expose.Host == "" || p.Workloads[j].Expose.Host == "") {
			// (In an environment, only a host from its domain may clash
			// anew.)
			where := ""
			if at != "" {
				where = " in " + strings.TrimPrefix(at, "environments.")
			}
			add(wat, fmt.Sprintf("takes %s%s, as workloads[%d] (%s) does%s", x.Host, x.Path, j, p.Workloads[j].Name, where),
				"give each exposed workload its own host or path")
			continue
		}
		taken[key] = i
		// A Gateway's listeners on one port may not share a hostname: the
		// listener deploy adds is one per host.
		if x.AddedListener(w.Name, p.Namespace) != "" {
			if j, dup := listened[x.Host]; dup {
				add(wat, fmt.Sprintf("is on %s, as workloads[%d] (%s) is, and gateway.addListeners adds one listener per host", x.Host, j, p.Workloads[j].Name),
					"give each a host of its own, or set addListeners to false and have the Gateway's owner serve the host")
				continue
			}
			listened[x.Host] = i
		}
	}
}

// ExposedWorkloads lists the workloads of p that are exposed.
func (p *Project) ExposedWorkloads() []string {
	var out []string
	for _, w := range p.Workloads {
		if w.Expose.On() {
			out = append(out, w.Name)
		}
	}
	return slices.Clip(out)
}
