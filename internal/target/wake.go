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
	// ConnectTimeoutEnv is the interceptor's timeout of one connection
	// attempt to a pod's Service (it tries again every 50 ms): its first
	// attempts to a woken pod come before kube-proxy programmed the
	// Service, and once the kernel rate-limits the ICMP that refuses them,
	// an attempt waits out the whole timeout.
	ConnectTimeoutEnv         = "KEDA_HTTP_CONNECT_TIMEOUT"
	DefaultConnectTimeout     = 500 * time.Millisecond
	RecommendedConnectTimeout = 100 * time.Millisecond
	// A woken pod's endpoint reaches the interceptor at once, but the
	// interceptor dials the pods' Service address, which kube-proxy
	// programs at most once per its minSyncPeriod.
	DefaultProxySync     = time.Second
	RecommendedProxySync = 100 * time.Millisecond
)

// scalerEnv and interceptorEnv are the environment variables only the
// add-on's scaler and only its interceptor have: how their Deployments are
// told apart, whatever an install named them.
const (
	scalerEnv      = "KEDA_HTTP_SCALER_TARGET_ADMIN_SERVICE"
	interceptorEnv = "KEDA_HTTP_PROXY_PORT"
)

// WakeSettings are the cluster's settings a wake from zero waits on, as
// far as skiff may read them.
type WakeSettings struct {
	// QueueTick is the add-on scaler's KEDA_HTTP_QUEUE_TICK_DURATION (its
	// default when unset); 0 when it could not be read, and QueueTickWhy
	// says why.
	QueueTick    time.Duration
	QueueTickWhy string
	// ConnectTimeout is the add-on interceptor's KEDA_HTTP_CONNECT_TIMEOUT
	// (its default when unset); 0 when it could not be read, and
	// ConnectTimeoutWhy says why.
	ConnectTimeout    time.Duration
	ConnectTimeoutWhy string
	// ProxySync is kube-proxy's minSyncPeriod for its mode, from the
	// kube-system/kube-proxy ConfigMap kubeadm writes (its default when
	// unset); 0 when it could not be read, and ProxySyncWhy says why.
	ProxyMode    string
	ProxySync    time.Duration
	ProxySyncWhy string
}

// WakeSettings reads the KEDA HTTP add-on scaler's queue tick and its
// interceptor's connect timeout (from their Deployments in the add-on's
// namespace) and kube-proxy's minSyncPeriod
// (from kube-system/kube-proxy). What it may not read or cannot find is
// said, not an error.
func (c *Cluster) WakeSettings(ctx context.Context) WakeSettings {
	var ws WakeSettings
	ws.QueueTick, ws.QueueTickWhy, ws.ConnectTimeout, ws.ConnectTimeoutWhy = c.addonSettings(ctx)
	ws.ProxyMode, ws.ProxySync, ws.ProxySyncWhy = c.proxySync(ctx)
	return ws
}

func (c *Cluster) addonSettings(ctx context.Context) (tick time.Duration, tickWhy string, connect time.Duration, connectWhy string) {
	ns := chart.InterceptorNamespace
	list, err := c.Clientset.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		why := "may not list Deployments in " + ns
		return 0, why, 0, why
	case err != nil:
		why := fmt.Sprintf("listing the Deployments in %s: %v", ns, err)
		return 0, why, 0, why
	}
	tickWhy, connectWhy = "found no Deployment of the add-on's scaler in "+ns, "found no Deployment of the add-on's interceptor in "+ns
	for i := range list.Items {
		d := &list.Items[i]
		if env, ok := containerEnv(d, scalerEnv); ok {
			tick, tickWhy = durationEnv(d, env, QueueTickEnv, DefaultQueueTick)
		}
		if env, ok := containerEnv(d, interceptorEnv); ok {
			connect, connectWhy = durationEnv(d, env, ConnectTimeoutEnv, DefaultConnectTimeout)
		}
	}
	return tick, tickWhy, connect, connectWhy
}

// durationEnv is the duration d's container sets in env[name], def when
// it sets none.
func durationEnv(d *appsv1.Deployment, env map[string]string, name string, def time.Duration) (time.Duration, string) {
	v, set := env[name]
	if !set {
		return def, ""
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, fmt.Sprintf("Deployment %s in %s sets %s=%q, which is not a duration", d.Name, d.Namespace, name, v)
	}
	return dur, ""
}

// containerEnv is the literal environment of d's container that has the
// variable marker, if d has one.
func containerEnv(d *appsv1.Deployment, marker string) (map[string]string, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		if _, ok := env[marker]; ok {
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
