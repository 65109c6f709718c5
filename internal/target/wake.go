package target

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/chart"
)

// The settings of a cluster that a wake from zero waits on, with their
// defaults and what docs/serverless.md recommends.
const (
	// QueueTickEnv is the KEDA HTTP add-on scaler's interval between two
	// reads of the requests its interceptors hold: a request that finds no
	// pod waits up to one before KEDA hears of it.
	QueueTickEnv         = "KEDA_HTTP_QUEUE_TICK_DURATION"
	DefaultQueueTick     = 500 * time.Millisecond
	RecommendedQueueTick = 100 * time.Millisecond
	// A woken pod's endpoint reaches the interceptor at once, but the
	// interceptor dials the pods' Service address, which kube-proxy
	// programs at most once per its minSyncPeriod.
	DefaultProxySync     = time.Second
	RecommendedProxySync = 100 * time.Millisecond
)

// scalerEnv is the environment variable only the add-on's scaler has: how
// its Deployment is told from the interceptor's and the operator's,
// whatever an install named them.
const scalerEnv = "KEDA_HTTP_SCALER_TARGET_ADMIN_SERVICE"

// WakeSettings are the cluster's settings a wake from zero waits on, as
// far as skiff may read them.
type WakeSettings struct {
	// QueueTick is the add-on scaler's KEDA_HTTP_QUEUE_TICK_DURATION (its
	// default when unset); 0 when it could not be read, and QueueTickWhy
	// says why.
	QueueTick    time.Duration
	QueueTickWhy string
	// ProxySync is kube-proxy's minSyncPeriod for its mode, from the
	// kube-system/kube-proxy ConfigMap kubeadm writes (its default when
	// unset); 0 when it could not be read, and ProxySyncWhy says why.
	ProxyMode    string
	ProxySync    time.Duration
	ProxySyncWhy string
}

// WakeSettings reads the KEDA HTTP add-on scaler's queue tick (from its
// Deployment in the add-on's namespace) and kube-proxy's minSyncPeriod
// (from kube-system/kube-proxy). What it may not read or cannot find is
// said, not an error.
func (c *Cluster) WakeSettings(ctx context.Context) WakeSettings {
	var ws WakeSettings
	ws.QueueTick, ws.QueueTickWhy = c.queueTick(ctx)
	ws.ProxyMode, ws.ProxySync, ws.ProxySyncWhy = c.proxySync(ctx)
	return ws
}

func (c *Cluster) queueTick(ctx context.Context) (time.Duration, string) {
	ns := chart.InterceptorNamespace
	list, err := c.Clientset.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return 0, "may not list Deployments in " + ns
	case err != nil:
		return 0, fmt.Sprintf("listing the Deployments in %s: %v", ns, err)
	}
	for i := range list.Items {
		env, ok := scalerContainerEnv(&list.Items[i])
		if !ok {
			continue
		}
		v, set := env[QueueTickEnv]
		if !set {
			return DefaultQueueTick, ""
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Sprintf("Deployment %s in %s sets %s=%q, which is not a duration", list.Items[i].Name, ns, QueueTickEnv, v)
		}
		return d, ""
	}
	return 0, "found no Deployment of the add-on's scaler in " + ns
}

// scalerContainerEnv is the literal environment of d's add-on scaler
// container, if d has one.
func scalerContainerEnv(d *appsv1.Deployment) (map[string]string, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		if _, ok := env[scalerEnv]; ok {
			return env, true
		}
	}
	return nil, false
}

// kubeProxyConfig is what proxySync reads of a KubeProxyConfiguration.
type kubeProxyConfig struct {
	Mode     string `json:"mode"`
	IPTables struct {
		MinSyncPeriod string `json:"minSyncPeriod"`
	} `json:"iptables"`
	NFTables struct {
		MinSyncPeriod string `json:"minSyncPeriod"`
	} `json:"nftables"`
}

func (c *Cluster) proxySync(ctx context.Context) (string, time.Duration, string) {
	cm, err := c.Clientset.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", 0, "no kube-system/kube-proxy ConfigMap (it is kubeadm's; managed clusters keep kube-proxy's settings elsewhere)"
	case apierrors.IsForbidden(err):
		return "", 0, "may not read ConfigMap kube-system/kube-proxy"
	case err != nil:
		return "", 0, fmt.Sprintf("reading ConfigMap kube-system/kube-proxy: %v", err)
	}
	return parseProxySync(cm)
}

func parseProxySync(cm *corev1.ConfigMap) (string, time.Duration, string) {
	data, ok := cm.Data["config.conf"]
	if !ok {
		return "", 0, "ConfigMap kube-system/kube-proxy has no config.conf"
	}
	var kc kubeProxyConfig
	if err := yaml.Unmarshal([]byte(data), &kc); err != nil {
		return "", 0, fmt.Sprintf("config.conf of ConfigMap kube-system/kube-proxy: %v", err)
	}
	var v string
	switch kc.Mode {
	case "", "iptables":
		kc.Mode, v = "iptables", kc.IPTables.MinSyncPeriod
	case "nftables":
		v = kc.NFTables.MinSyncPeriod
	default:
		return kc.Mode, 0, "kube-proxy runs in " + kc.Mode + " mode"
	}
	if v == "" {
		return kc.Mode, DefaultProxySync, ""
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return kc.Mode, 0, fmt.Sprintf("kube-proxy's %s.minSyncPeriod %q is not a duration", kc.Mode, v)
	}
	if d == 0 {
		d = DefaultProxySync // kube-proxy's defaulting turns 0 into 1s
	}
	return kc.Mode, d, ""
}
