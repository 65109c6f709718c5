package target

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// The APIs of the edge skiff's base chart uses for `expose`.
var (
	HTTPRoutes   = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	Gateways     = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	Certificates = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	// ReferenceGrants are v1beta1 in Gateway API's standard channel.
	ReferenceGrants = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1beta1", Resource: "referencegrants"}
)

// Reasons a Gateway gives for a route that will not be routed until the
// route, the Gateway or a grant changes: waiting longer will not help.
var (
	finalNotAccepted = []string{"NotAllowedByListeners", "NoMatchingListenerHostname", "NoMatchingParent", "UnsupportedValue"}
	finalUnresolved  = []string{"RefNotPermitted", "InvalidKind", "UnsupportedProtocol"}
)

// RouteRefusedError says the Gateway refused a workload's route: the
// route's own condition, and what to do.
type RouteRefusedError struct {
	Workload, Host string
	Gateway        project.Gateway
	// Condition is Accepted or ResolvedRefs; Reason and Message are the
	// Gateway's.
	Condition, Reason, Message string
	// Namespace is the route's.
	Namespace string
}

func (e *RouteRefusedError) Error() string {
	what := "refused the route"
	if e.Condition == "ResolvedRefs" {
		what = "cannot send requests on the route"
	}
	msg := fmt.Sprintf("the Gateway %s/%s %s of %s (host %s): %s", e.Gateway.Namespace, e.Gateway.Name, what, e.Workload, e.Host, said(e.Reason, e.Message))
	switch e.Reason {
	case "NotAllowedByListeners", "NoMatchingListenerHostname":
		msg += fmt.Sprintf("; no listener of the Gateway admits this host from namespace %s: use a host it allows (`kubectl get gateway -n %s %s -o yaml` lists its listeners), or ask its owner for a listener",
			e.Namespace, e.Gateway.Namespace, e.Gateway.Name)
	case "NoMatchingParent":
		msg += "; check gateway.listener in skiff.yaml against the Gateway's listeners"
	case "RefNotPermitted":
		msg += "; the route of a scaled workload goes to the KEDA HTTP add-on's interceptor in namespace " + chart.InterceptorNamespace +
			", which the Gateway follows only with a ReferenceGrant there; ask a cluster admin to apply:\n" + InterceptorGrant(e.Namespace)
	}
	return msg
}

// InterceptorGrant is the ReferenceGrant that lets HTTPRoutes of namespace
// ns send requests to the KEDA HTTP add-on's interceptor (docs/expose.md).
func InterceptorGrant(ns string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: skiff-routes-from-%s
  namespace: %s
spec:
  from:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      namespace: %s
  to:
    - group: ""
      kind: Service
      name: %s
`, ns, chart.InterceptorNamespace, ns, chart.InterceptorService)
}

// CertificateFailedError says cert-manager failed to issue a host's
// certificate, in its own words.
type CertificateFailedError struct {
	Workload, Host, Issuer, Reason, Message string
}

func (e *CertificateFailedError) Error() string {
	return fmt.Sprintf("cert-manager could not issue the certificate of %s (host %s) from %s: %s; `kubectl describe certificate %s` and its CertificateRequest say more",
		e.Workload, e.Host, e.Issuer, said(e.Reason, e.Message), e.Workload)
}

// waitExposed waits, when release rel exposes the workload, until the
// Gateway accepted its route and resolved its backend, and, with tls auto,
// until its certificate is Ready. A refusal the Gateway or cert-manager
// will not change its mind about ends the wait at once, with their
// message. An Ingress has no conditions to wait for. What rel holds
// decides, not skiff.yaml: a rollback to a revision without expose waits
// for no route.
func (b *base) waitExposed(ctx context.Context, rel *deploy.Record) error {
	x := ReleasedExposure(rel)
	if x == nil || b.c.Dynamic == nil {
		return nil
	}
	if x.Gateway != nil {
		err := waitObject(ctx, b.c.Dynamic.Resource(HTTPRoutes).Namespace(b.c.Namespace), b.w.Name, func(u *unstructured.Unstructured) (bool, string, error) {
			return routeState(u, x, b.w.Name, b.c.Namespace)
		})
		if err != nil {
			var refused *RouteRefusedError
			if errors.As(err, &refused) {
				return err
			}
			return fmt.Errorf("the route of %s (host %s) is not accepted by the Gateway %s/%s: %w; `skiff doctor` checks the Gateway",
				b.w.Name, x.Host, x.Gateway.Namespace, x.Gateway.Name, err)
		}
	}
	if x.TLS.Mode == project.TLSAuto {
		err := waitObject(ctx, b.c.Dynamic.Resource(Certificates).Namespace(b.c.Namespace), b.w.Name, func(u *unstructured.Unstructured) (bool, string, error) {
			return certificateState(u, x, b.w.Name)
		})
		if err != nil {
			var failed *CertificateFailedError
			if errors.As(err, &failed) {
				return err
			}
			return fmt.Errorf("the certificate of %s (host %s) from %s %s is not ready: %w", b.w.Name, x.Host, x.TLS.Kind, x.TLS.Issuer, err)
		}
	}
	return b.serveCertificate(ctx, rel, x)
}

// serveCertificate adds, with gateway.addListeners, the listener that
// serves the host's certificate to the Gateway and waits until the Gateway
// programmed it. When that fails on a first install (which is then
// removed), the listener goes too: a Gateway shared with others keeps no
// listener of a workload that is not there.
func (b *base) serveCertificate(ctx context.Context, rel *deploy.Record, x *project.Exposure) error {
	name := x.AddedListener(b.w.Name, b.c.Namespace)
	if name == "" {
		return nil
	}
	if _, err := b.c.applyListener(ctx, x, b.w.Name, x.SecretName(b.w.Name)); err != nil {
		return err
	}
	err := b.c.waitListener(ctx, x.Gateway, name, x.Host)
	if err == nil {
		return nil
	}
	if rel.Version == 1 {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := b.c.removeListener(cctx, x, b.w.Name); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	var refused *ListenerRefusedError
	if errors.As(err, &refused) {
		return err
	}
	return fmt.Errorf("the Gateway %s/%s has not programmed the listener %s for %s: %w", x.Gateway.Namespace, x.Gateway.Name, name, x.Host, err)
}

// ReleasedExposure is where release rel of skiff's base chart exposes its
// workload, read from the release's values (nil: it does not).
func ReleasedExposure(rel *deploy.Record) *project.Exposure {
	if rel == nil {
		return nil
	}
	v := func(path ...string) string {
		s, _, _ := unstructured.NestedString(rel.Config, append([]string{"expose"}, path...)...)
		return s
	}
	if on, _, _ := unstructured.NestedBool(rel.Config, "expose", "enabled"); !on {
		return nil
	}
	x := &project.Exposure{Host: v("host"), Path: cmp.Or(v("path"), "/"),
		TLS: project.TLS{Mode: cmp.Or(v("tls", "mode"), project.TLSOff)}}
	switch x.TLS.Mode {
	case project.TLSAuto:
		x.TLS.Issuer, x.TLS.Kind = v("tls", "issuer"), v("tls", "issuerKind")
	case project.TLSSecret:
		x.TLS.Secret = v("tls", "secret")
	}
	if ing, _, _ := unstructured.NestedBool(rel.Config, "expose", "ingress", "enabled"); ing {
		x.Ingress = &project.Ingress{ClassName: v("ingress", "className")}
		return x
	}
	x.Gateway = &project.Gateway{Name: v("gateway", "name"), Namespace: cmp.Or(v("gateway", "namespace"), rel.Namespace), Listener: v("gateway", "listener"),
		AddListeners: v("gateway", "addedListener") != ""}
	return x
}

// routeState reads an HTTPRoute's status for the parent x names: done when
// Accepted and ResolvedRefs are True for its current generation; an error
// when the Gateway refused it for good; else why it is not done yet.
func routeState(u *unstructured.Unstructured, x *project.Exposure, workload, ns string) (bool, string, error) {
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		ref, _ := pm["parentRef"].(map[string]any)
		name, _ := ref["name"].(string)
		pns, _ := ref["namespace"].(string)
		section, _ := ref["sectionName"].(string)
		if pns == "" {
			pns = u.GetNamespace()
		}
		if name != x.Gateway.Name || pns != x.Gateway.Namespace || section != x.Gateway.Listener {
			continue
		}
		conds, _ := pm["conditions"].([]any)
		accepted, aReason, aMsg := conditionOf(conds, "Accepted", u.GetGeneration())
		resolved, rReason, rMsg := conditionOf(conds, "ResolvedRefs", u.GetGeneration())
		refused := func(cond, reason, msg string) error {
			return &RouteRefusedError{Workload: workload, Host: x.Host, Gateway: *x.Gateway, Condition: cond, Reason: reason, Message: msg, Namespace: ns}
		}
		switch {
		case accepted == "False" && slices.Contains(finalNotAccepted, aReason):
			return false, "", refused("Accepted", aReason, aMsg)
		case resolved == "False" && slices.Contains(finalUnresolved, rReason):
			return false, "", refused("ResolvedRefs", rReason, rMsg)
		case accepted == "True" && resolved == "True":
			return true, "", nil
		case accepted == "False":
			return false, "not accepted: " + said(aReason, aMsg), nil
		case resolved == "False":
			return false, "references not resolved: " + said(rReason, rMsg), nil
		}
		return false, "the Gateway has not looked at this version of the route yet", nil
	}
	return false, "no word from the Gateway yet: is it there, and its controller running?", nil
}

// certificateState: done when the Certificate is Ready for its current
// generation; an error when cert-manager's last issuance failed.
func certificateState(u *unstructured.Unstructured, x *project.Exposure, workload string) (bool, string, error) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	ready, rReason, rMsg := conditionOf(conds, "Ready", u.GetGeneration())
	issuing, iReason, iMsg := conditionOf(conds, "Issuing", u.GetGeneration())
	switch {
	case ready == "True":
		return true, "", nil
	case issuing == "False" && iReason == "Failed":
		return false, "", &CertificateFailedError{Workload: workload, Host: x.Host, Issuer: x.TLS.Kind + " " + x.TLS.Issuer, Reason: iReason, Message: iMsg}
	case ready == "False":
		return false, said(rReason, rMsg), nil
	}
	return false, "cert-manager has not looked at it yet: does the cluster run cert-manager?", nil
}

// said is a condition's reason and message as one ("Reason: message"),
// either of which may be empty (some gateways set no message).
func said(reason, msg string) string {
	switch {
	case msg == "":
		return reason
	case reason == "":
		return msg
	}
	return reason + ": " + msg
}

// conditionOf returns the status, reason and message of condition typ
// when it is about generation (or says of none); "" when there is none.
func conditionOf(conds []any, typ string, generation int64) (status, reason, msg string) {
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != typ {
			continue
		}
		if g, ok, _ := unstructured.NestedInt64(m, "observedGeneration"); ok && g < generation {
			return "", "", ""
		}
		status, _ = m["status"].(string)
		reason, _ = m["reason"].(string)
		msg, _ = m["message"].(string)
		return status, reason, strings.TrimSpace(msg)
	}
	return "", "", ""
}

// waitObject watches object name of ri until state says it is done, or
// fails. When ctx ends, the error says the last reason it was not done.
func waitObject(ctx context.Context, ri dynamic.ResourceInterface, name string, state func(*unstructured.Unstructured) (bool, string, error)) error {
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	why := "it is not there yet"
	var failed error
	err := watchUntil(ctx,
		func() (watch.Interface, error) { return ri.Watch(ctx, opts) },
		func() (runtime.Object, error) { return ri.Get(ctx, name, metav1.GetOptions{}) },
		func(o runtime.Object) bool {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return false
			}
			done, w, err := state(u)
			if err != nil {
				failed = err
				return true
			}
			if w != "" {
				why = w
			}
			return done
		})
	switch {
	case failed != nil:
		return failed
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s (%w)", why, context.Cause(ctx))
	}
	return err
}

// exposeStatus adds the public URL of a workload its release rel exposes
// to st and, when the Gateway refuses its route, says so as a problem that
// makes it Degraded. The route may not be readable (RBAC): then the URL
// alone.
func (b *base) exposeStatus(ctx context.Context, st *Status, rel *deploy.Record) {
	x := ReleasedExposure(rel)
	if x == nil {
		return
	}
	st.URL = x.URL()
	if x.Gateway == nil || b.c.Dynamic == nil || st.State == StateNotDeployed {
		return
	}
	u, err := b.c.Dynamic.Resource(HTTPRoutes).Namespace(b.c.Namespace).Get(ctx, b.w.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		st.Problems = append(st.Problems, kube.PodProblem{Reason: "NoRoute", Message: fmt.Sprintf("the release has no HTTPRoute %s: nothing routes %s to it; deploy it again", b.w.Name, x.Host)})
		st.State = StateDegraded
		return
	case err != nil:
		return
	}
	done, why, err := routeState(u, x, b.w.Name, b.c.Namespace)
	switch {
	case err != nil:
		st.Problems = append(st.Problems, kube.PodProblem{Reason: "RouteRefused", Message: err.Error()})
		st.State = StateDegraded
	case !done:
		st.Problems = append(st.Problems, kube.PodProblem{Reason: "RouteNotReady", Message: "the Gateway: " + why})
	}
}

// MissingEdgeError says the cluster lacks an API exposed workloads need.
type MissingEdgeError struct {
	Workloads []string // the exposed workloads that need it
	Missing   string   // what is not there
	Fix       string
}

func (e *MissingEdgeError) Error() string {
	return fmt.Sprintf("`expose:` of %s in skiff.yaml needs %s, which the cluster does not have; %s",
		strings.Join(e.Workloads, ", "), e.Missing, e.Fix)
}

// checkEdge fails when an exposed workload of ws (base chart) needs
// Gateway API's HTTPRoute or cert-manager's Certificate and the cluster
// does not serve it.
func (c *Cluster) checkEdge(ws []project.Workload) error {
	var routed, certified []string
	for i := range ws {
		w := &ws[i]
		x := c.Project.Exposure(w)
		if x == nil || hasOwnChart(c.Root, w) {
			continue
		}
		if x.Gateway != nil {
			routed = append(routed, w.Name)
		}
		if x.TLS.Mode == project.TLSAuto {
			certified = append(certified, w.Name)
		}
	}
	for _, need := range []struct {
		ws   []string
		gvr  schema.GroupVersionResource
		what string
		fix  string
	}{
		{routed, HTTPRoutes, "Gateway API (the " + HTTPRoutes.GroupVersion().String() + " HTTPRoute)",
			"install the Gateway API CRDs (standard channel) and an implementation, or use expose.ingress (docs/expose.md)"},
		{certified, Certificates, "cert-manager (the " + Certificates.GroupVersion().String() + " Certificate)",
			"install cert-manager, or use tls: {secret: NAME} or tls: off (docs/expose.md)"},
	} {
		if len(need.ws) == 0 {
			continue
		}
		ok, err := c.serves(need.gvr)
		if err != nil {
			return err
		}
		if !ok {
			return &MissingEdgeError{Workloads: need.ws, Missing: need.what, Fix: need.fix}
		}
	}
	return nil
}

// checkGatewaysExist fails when the Gateway an exposed workload of ws
// attaches to is not there, or has no listener by the name skiff.yaml
// gives: a Gateway writes no status on a route that names neither, so
// deploy would wait its whole timeout. A Gateway skiff may not read is
// not checked.
func (c *Cluster) checkGatewaysExist(ctx context.Context, ws []project.Workload) error {
	if c.Dynamic == nil {
		return nil
	}
	seen := map[project.Gateway]bool{}
	for i := range ws {
		w := &ws[i]
		x := c.Project.Exposure(w)
		if x == nil || x.Gateway == nil || hasOwnChart(c.Root, w) || seen[*x.Gateway] {
			continue
		}
		g := *x.Gateway
		seen[g] = true
		gw, err := c.Dynamic.Resource(Gateways).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return &MissingEdgeError{Workloads: []string{w.Name}, Missing: fmt.Sprintf("the Gateway %s/%s", g.Namespace, g.Name),
				Fix: "fix gateway in skiff.yaml (`kubectl get gateways -A` lists the cluster's)"}
		case err != nil:
			continue // not allowed to look, or it does not answer: the wait will tell
		}
		if g.Listener == "" {
			continue
		}
		listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
		var names []string
		for _, l := range listeners {
			if lm, _ := l.(map[string]any); lm != nil {
				name, _ := lm["name"].(string)
				names = append(names, name)
			}
		}
		if !slices.Contains(names, g.Listener) {
			return &MissingEdgeError{Workloads: []string{w.Name}, Missing: fmt.Sprintf("the listener %s of the Gateway %s/%s", g.Listener, g.Namespace, g.Name),
				Fix: "set gateway.listener in skiff.yaml to one it has: " + strings.Join(names, ", ")}
		}
	}
	return nil
}

// EdgeFindings is what CheckGateways found: Problems stop an exposed
// workload from being reached; Warnings may.
type EdgeFindings struct {
	Found    []string
	Warnings []string
	Problems []string
}

// CheckGateways reads what the exposed workloads of ws (base chart, on a
// Gateway) need of the cluster's edge: the APIs (Gateway API, cert-manager
// with tls auto), their Gateway, Accepted and Programmed, with a listener
// (the one skiff.yaml names, or any) whose hostname admits each host, an
// HTTPS one when tls is not off; and, for a scaled workload, the
// ReferenceGrant in the interceptor's namespace that lets the routes of
// the project's namespace reach it. What it may not read (RBAC) is a
// warning. It changes nothing.
func (c *Cluster) CheckGateways(ctx context.Context, ws []project.Workload) (*EdgeFindings, error) {
	out := &EdgeFindings{}
	if err := c.checkEdge(ws); err != nil {
		var me *MissingEdgeError
		if errors.As(err, &me) {
			out.Problems = append(out.Problems, err.Error())
			return out, nil
		}
		return nil, err
	}
	type gwKey struct{ ns, name string }
	byGateway := map[gwKey][]*project.Workload{}
	var keys []gwKey
	grantNeeded := false
	for i := range ws {
		w := &ws[i]
		x := c.Project.Exposure(w)
		if x == nil || x.Gateway == nil || hasOwnChart(c.Root, w) {
			continue
		}
		k := gwKey{x.Gateway.Namespace, x.Gateway.Name}
		if _, seen := byGateway[k]; !seen {
			keys = append(keys, k)
		}
		byGateway[k] = append(byGateway[k], w)
		grantNeeded = grantNeeded || w.Scale != nil
	}
	if len(keys) == 0 {
		return out, nil
	}
	if c.Dynamic == nil {
		return nil, errors.New("no client for the Gateway API objects")
	}
	for _, k := range keys {
		gw, err := c.Dynamic.Resource(Gateways).Namespace(k.ns).Get(ctx, k.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out.Problems = append(out.Problems, fmt.Sprintf("there is no Gateway %s/%s; fix gateway in skiff.yaml (`kubectl get gateways -A` lists them)", k.ns, k.name))
			continue
		case apierrors.IsForbidden(err):
			out.Warnings = append(out.Warnings, fmt.Sprintf("may not read the Gateway %s/%s: cannot tell whether it admits the hosts", k.ns, k.name))
			continue
		case err != nil:
			return nil, fmt.Errorf("reading the Gateway %s/%s: %w", k.ns, k.name, err)
		}
		conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
		bad := false
		for _, typ := range []string{"Accepted", "Programmed"} {
			if st, reason, msg := conditionOf(conds, typ, gw.GetGeneration()); st != "True" {
				bad = true
				out.Problems = append(out.Problems, fmt.Sprintf("the Gateway %s/%s is not %s: %s", k.ns, k.name, typ, cmp.Or(said(reason, msg), "no status yet")))
			}
		}
		if bad {
			continue
		}
		out.Found = append(out.Found, fmt.Sprintf("Gateway %s/%s is programmed", k.ns, k.name))
		listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
		for _, w := range byGateway[k] {
			c.checkListeners(out, k.ns+"/"+k.name, listeners, w)
		}
	}
	if grantNeeded {
		c.checkInterceptorGrant(ctx, out)
	}
	return out, nil
}

// checkListeners: a listener of the Gateway admits w's host.
func (c *Cluster) checkListeners(out *EdgeFindings, gateway string, listeners []any, w *project.Workload) {
	x := c.Project.Exposure(w)
	var admitting []map[string]any
	for _, l := range listeners {
		lm, _ := l.(map[string]any)
		name, _ := lm["name"].(string)
		if x.Gateway.Listener != "" && name != x.Gateway.Listener {
			continue
		}
		host, _ := lm["hostname"].(string)
		if HostMatches(host, x.Host) {
			admitting = append(admitting, lm)
		}
	}
	if len(admitting) == 0 {
		which := "no listener of the Gateway " + gateway
		if x.Gateway.Listener != "" {
			which = "the listener " + x.Gateway.Listener + " of the Gateway " + gateway + " (or there is none by that name)"
		}
		out.Problems = append(out.Problems, fmt.Sprintf("%s admits %s's host %s; use a host it allows, or ask its owner for a listener", which, w.Name, x.Host))
		return
	}
	if x.TLS.Mode == project.TLSOff {
		return
	}
	secret := x.SecretName(w.Name)
	var https []map[string]any
	for _, lm := range admitting {
		if proto, _ := lm["protocol"].(string); proto == "HTTPS" {
			https = append(https, lm)
		}
	}
	if len(https) == 0 {
		out.Problems = append(out.Problems, fmt.Sprintf("no HTTPS listener of the Gateway %s admits %s's host %s, and its tls is %s; use tls: off, or a Gateway with an HTTPS listener", gateway, w.Name, x.Host, x.TLS.Mode))
		return
	}
	for _, lm := range https {
		refs, _, _ := unstructured.NestedSlice(lm, "tls", "certificateRefs")
		for _, r := range refs {
			rm, _ := r.(map[string]any)
			ns, _ := rm["namespace"].(string)
			if rm["name"] == secret && (ns == c.Namespace || (ns == "" && strings.HasPrefix(gateway, c.Namespace+"/"))) {
				out.Found = append(out.Found, fmt.Sprintf("%s's listener %v serves %s with the certificate in Secret %s", gateway, lm["name"], x.Host, secret))
				return
			}
		}
	}
	out.Warnings = append(out.Warnings, fmt.Sprintf("the HTTPS listener %v of %s admits %s but serves its own certificate, not the one in Secret %s/%s; ask the Gateway's owner for a listener with hostname %s and that Secret in its certificateRefs (docs/expose.md), or use tls: off",
		https[0]["name"], gateway, x.Host, c.Namespace, secret, x.Host))
}

// HostMatches reports whether a listener's hostname ("" admits any)
// admits host: equal, or a wildcard "*.example.com" matching any host
// under it.
func HostMatches(listener, host string) bool {
	if listener == "" || listener == host {
		return true
	}
	if suffix, ok := strings.CutPrefix(listener, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return false
}

// checkInterceptorGrant: a ReferenceGrant in the interceptor's namespace
// lets HTTPRoutes of the project's namespace reach its Service.
func (c *Cluster) checkInterceptorGrant(ctx context.Context, out *EdgeFindings) {
	list, err := c.Dynamic.Resource(ReferenceGrants).Namespace(chart.InterceptorNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("may not read the ReferenceGrants of namespace %s (%v): cannot tell whether the Gateway may send to the KEDA interceptor; deploy will say", chart.InterceptorNamespace, err))
		return
	}
	for _, g := range list.Items {
		if grants(&g, c.Namespace) {
			out.Found = append(out.Found, fmt.Sprintf("ReferenceGrant %s/%s lets the routes of %s reach the KEDA interceptor", chart.InterceptorNamespace, g.GetName(), c.Namespace))
			return
		}
	}
	out.Problems = append(out.Problems, fmt.Sprintf("no ReferenceGrant in namespace %s lets the HTTPRoutes of %s reach the KEDA interceptor, which scaled workloads are routed through; ask a cluster admin to apply:\n%s",
		chart.InterceptorNamespace, c.Namespace, InterceptorGrant(c.Namespace)))
}

// grants reports whether ReferenceGrant g lets HTTPRoutes of namespace ns
// refer to the interceptor's Service.
func grants(g *unstructured.Unstructured, ns string) bool {
	from, _, _ := unstructured.NestedSlice(g.Object, "spec", "from")
	to, _, _ := unstructured.NestedSlice(g.Object, "spec", "to")
	fromOK := slices.ContainsFunc(from, func(f any) bool {
		m, _ := f.(map[string]any)
		return m["group"] == "gateway.networking.k8s.io" && m["kind"] == "HTTPRoute" && m["namespace"] == ns
	})
	toOK := slices.ContainsFunc(to, func(t any) bool {
		m, _ := t.(map[string]any)
		name, hasName := m["name"].(string)
		return (m["group"] == "" || m["group"] == nil) && m["kind"] == "Service" && (!hasName || name == "" || name == chart.InterceptorService)
	})
	return fromOK && toOK
}
