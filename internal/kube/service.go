package kube

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ServiceHost splits a cluster-internal host name, <service>.<namespace>.svc
// (optionally followed by the cluster's domain), into its Service and
// namespace; ok is false for any other host.
func ServiceHost(host string) (service, namespace string, ok bool) {
	parts := strings.Split(host, ".")
	if len(parts) < 3 || parts[2] != "svc" || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// ForwardService forwards a local port to port of the Service ns/name: to
// the matching container port of one of its ready pods, as kubectl
// port-forward svc/NAME does.
func (c *Client) ForwardService(ctx context.Context, ns, name string, port int) (*Forward, error) {
	svc, err := c.Clientset.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if int(svc.Spec.Ports[i].Port) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("Service %s/%s has no port %d", ns, name, port)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("Service %s/%s has no selector: no pods to forward to", ns, name)
	}
	pods, err := c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !PodReady(p) {
			continue
		}
		if target, ok := targetPort(p, sp.TargetPort, port); ok {
			return c.ForwardPort(ctx, ns, p.Name, target)
		}
	}
	return nil, fmt.Errorf("Service %s/%s has no ready pod", ns, name)
}

// PodReady reports whether p is running, not being deleted, and Ready:
// a pod a port-forward or a request may go to.
func PodReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort is the container port of p a Service port's targetPort
// names (a number, a port name, or, unset, the Service port itself).
func targetPort(p *corev1.Pod, tp intstr.IntOrString, port int) (int, bool) {
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == tp.StrVal {
					return int(cp.ContainerPort), true
				}
			}
		}
		return 0, false
	case tp.IntVal != 0:
		return int(tp.IntVal), true
	}
	return port, true
}
