package target

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/internal/project"
)

// A listener skiff adds to a Gateway (gateway.addListeners) is applied
// server-side with a field manager of the workload's own: the Gateway's
// listeners are a list keyed by name, so the apply adds or changes that
// one listener alone, and an apply of none removes it, whoever owns the
// rest of the Gateway.

// listenerManager is the field manager of the listener of workload in
// namespace.
func listenerManager(workload, namespace string) string {
	return "skiff-listener-" + namespace + "-" + workload
}

// ListenerRefusedError says the Gateway will not serve the certificate on
// the listener skiff added, in its words.
type ListenerRefusedError struct {
	Gateway, Listener, Host, Reason, Message string
}

func (e *ListenerRefusedError) Error() string {
	return fmt.Sprintf("the Gateway %s refuses the listener %s skiff added for %s: %s", e.Gateway, e.Listener, e.Host, said(e.Reason, e.Message))
}

// applyListener adds to x's Gateway the HTTPS listener of its host, with
// the certificate in Secret secret of namespace ns, admitting the routes
// of ns; its port is that of the Gateway's listener skiff.yaml names, or
// of its first HTTPS listener.
func (c *Cluster) applyListener(ctx context.Context, x *project.Exposure, workload, secret string) (string, error) {
	g := x.Gateway
	ri := c.Dynamic.Resource(Gateways).Namespace(g.Namespace)
	gw, err := ri.Get(ctx, g.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the Gateway %s/%s to add %s's listener: %w", g.Namespace, g.Name, workload, err)
	}
	name := x.AddedListener(workload, c.Namespace)
	var port int64
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	for _, l := range listeners {
		lm, _ := l.(map[string]any)
		if lm["protocol"] != "HTTPS" || lm["name"] == name {
			continue
		}
		if p, _, _ := unstructured.NestedInt64(lm, "port"); p != 0 && (port == 0 || lm["name"] == g.Listener) {
			port = p
		}
	}
	if port == 0 {
		return "", fmt.Errorf("the Gateway %s/%s has no HTTPS listener whose port the listener of %s could share; ask its owner for one, or set gateway.addListeners to false", g.Namespace, g.Name, workload)
	}
	listener := map[string]any{
		"name": name, "hostname": x.Host, "port": port, "protocol": "HTTPS",
		"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{
			map[string]any{"group": "", "kind": "Secret", "name": secret, "namespace": c.Namespace},
		}},
		"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "Selector",
			"selector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": c.Namespace}}}},
	}
	if err := c.applyListeners(ctx, g, workload, []any{listener}); err != nil {
		return "", fmt.Errorf("adding the listener %s for %s to the Gateway %s/%s: %w; gateway.addListeners needs the right to patch it", name, x.Host, g.Namespace, g.Name, err)
	}
	return name, nil
}

// applyListeners applies the listeners of workload's field manager.
func (c *Cluster) applyListeners(ctx context.Context, g *project.Gateway, workload string, listeners []any) error {
	data, err := json.Marshal(map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": g.Name, "namespace": g.Namespace},
		"spec":     map[string]any{"listeners": listeners},
	})
	if err != nil {
		return err
	}
	force := true
	_, err = c.Dynamic.Resource(Gateways).Namespace(g.Namespace).Patch(ctx, g.Name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: listenerManager(workload, c.Namespace), Force: &force})
	return err
}

// waitListener waits until the Gateway resolved and programmed listener
// name; a certificate it may not read ends the wait at once.
func (c *Cluster) waitListener(ctx context.Context, g *project.Gateway, name, host string) error {
	return waitObject(ctx, c.Dynamic.Resource(Gateways).Namespace(g.Namespace), g.Name, func(u *unstructured.Unstructured) (bool, string, error) {
		sts, _, _ := unstructured.NestedSlice(u.Object, "status", "listeners")
		for _, st := range sts {
			sm, _ := st.(map[string]any)
			if sm["name"] != name {
				continue
			}
			conds, _ := sm["conditions"].([]any)
			resolved, rReason, rMsg := conditionOf(conds, "ResolvedRefs", u.GetGeneration())
			programmed, pReason, pMsg := conditionOf(conds, "Programmed", u.GetGeneration())
			switch {
			case resolved == "False" && rReason == "RefNotPermitted":
				return false, "", &ListenerRefusedError{Gateway: g.Namespace + "/" + g.Name, Listener: name, Host: host, Reason: rReason, Message: rMsg}
			case resolved == "True" && programmed == "True":
				return true, "", nil
			case resolved == "False":
				return false, "listener " + name + ": " + said(rReason, rMsg), nil
			case programmed == "False":
				return false, "listener " + name + ": " + said(pReason, pMsg), nil
			}
		}
		return false, "the Gateway has not taken the listener " + name + " in yet", nil
	})
}

// RemoveListener removes from its Gateway the listener skiff added for w
// (gateway.addListeners), and returns its name ("": there was none).
func (c *Cluster) RemoveListener(ctx context.Context, w *project.Workload) (string, error) {
	x := c.Project.Exposure(w)
	if x == nil || c.Dynamic == nil {
		return "", nil
	}
	return c.removeListener(ctx, x, w.Name)
}

func (c *Cluster) removeListener(ctx context.Context, x *project.Exposure, workload string) (string, error) {
	name := x.AddedListener(workload, c.Namespace)
	if name == "" {
		return "", nil
	}
	gw, err := c.Dynamic.Resource(Gateways).Namespace(x.Gateway.Namespace).Get(ctx, x.Gateway.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the Gateway %s/%s to remove %s's listener: %w", x.Gateway.Namespace, x.Gateway.Name, workload, err)
	}
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	if !slices.ContainsFunc(listeners, func(l any) bool { lm, _ := l.(map[string]any); return lm["name"] == name }) {
		return "", nil
	}
	if err := c.applyListeners(ctx, x.Gateway, workload, []any{}); err != nil {
		return "", fmt.Errorf("removing the listener %s from the Gateway %s/%s: %w", name, x.Gateway.Namespace, x.Gateway.Name, err)
	}
	return name, nil
}
