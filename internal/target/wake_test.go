package target

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// addonDeployment is a Deployment of the add-on in namespace keda whose
// one container has env.
func addonDeployment(name string, env ...corev1.EnvVar) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "keda"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Env: env}}}}}}
}

func kubeProxyConfigMap(conf string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Data: map[string]string{"config.conf": conf}}
}

func TestWakeSettings(t *testing.T) {
	ctx := context.Background()
	target := corev1.EnvVar{Name: scalerEnv, Value: "keda-add-ons-http-interceptor-admin"}
	interceptor := addonDeployment("keda-add-ons-http-interceptor", corev1.EnvVar{Name: interceptorEnv, Value: "8080"},
		corev1.EnvVar{Name: QueueTickEnv, Value: "1ms"}) // not the scaler's: ignored
	for _, tc := range []struct {
		name          string
		deploys       []*appsv1.Deployment
		cm            *corev1.ConfigMap
		tick          time.Duration
		tickWhy       string
		connect       time.Duration
		connectWhy    string
		mode          string
		sync          time.Duration
		syncWhy       string
		forbidDeploys bool
	}{
		{name: "defaults", deploys: []*appsv1.Deployment{interceptor, addonDeployment("keda-add-ons-http-external-scaler", target)},
			cm:   kubeProxyConfigMap("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"\"\n"),
			tick: DefaultQueueTick, connect: DefaultConnectTimeout, mode: "iptables", sync: time.Second},
		{name: "tuned", deploys: []*appsv1.Deployment{
			addonDeployment("interceptor", corev1.EnvVar{Name: interceptorEnv, Value: "8080"}, corev1.EnvVar{Name: ConnectTimeoutEnv, Value: "100ms"}),
			addonDeployment("scaler", target, corev1.EnvVar{Name: QueueTickEnv, Value: "100ms"})},
			cm:   kubeProxyConfigMap("kind: KubeProxyConfiguration\nmode: iptables\niptables:\n  minSyncPeriod: 100ms\n"),
			tick: 100 * time.Millisecond, connect: 100 * time.Millisecond, mode: "iptables", sync: 100 * time.Millisecond},
		{name: "nftables, zero is kube-proxy's default", deploys: []*appsv1.Deployment{addonDeployment("scaler", target, corev1.EnvVar{Name: QueueTickEnv, Value: "soon"})},
			cm:      kubeProxyConfigMap("mode: nftables\nnftables:\n  minSyncPeriod: 0s\niptables:\n  minSyncPeriod: 50ms\n"),
			tickWhy: `sets KEDA_HTTP_QUEUE_TICK_DURATION="soon", which is not a duration`, connectWhy: "found no Deployment of the add-on's interceptor in keda",
			mode: "nftables", sync: time.Second},
		{name: "nothing to read", tickWhy: "found no Deployment of the add-on's scaler in keda", connectWhy: "found no Deployment of the add-on's interceptor in keda",
			syncWhy: "no kube-system/kube-proxy ConfigMap"},
		{name: "ipvs, and not allowed", forbidDeploys: true, cm: kubeProxyConfigMap("mode: ipvs\n"),
			tickWhy: "may not list Deployments in keda", connectWhy: "may not list Deployments in keda", mode: "ipvs", syncWhy: "kube-proxy runs in ipvs mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cs := cluster(t, "")
			for _, d := range tc.deploys {
				if _, err := cs.AppsV1().Deployments("keda").Create(ctx, d, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.cm != nil {
				if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, tc.cm, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.forbidDeploys {
				cs.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("no"))
				})
			}
			ws := c.WakeSettings(ctx)
			if ws.QueueTick != tc.tick || !strings.Contains(ws.QueueTickWhy, tc.tickWhy) || (tc.tickWhy == "") != (ws.QueueTickWhy == "") {
				t.Errorf("queue tick %v (%q), want %v (%q)", ws.QueueTick, ws.QueueTickWhy, tc.tick, tc.tickWhy)
			}
			if ws.ConnectTimeout != tc.connect || !strings.Contains(ws.ConnectTimeoutWhy, tc.connectWhy) || (tc.connectWhy == "") != (ws.ConnectTimeoutWhy == "") {
				t.Errorf("connect timeout %v (%q), want %v (%q)", ws.ConnectTimeout, ws.ConnectTimeoutWhy, tc.connect, tc.connectWhy)
			}
			if ws.ProxyMode != tc.mode || ws.ProxySync != tc.sync || !strings.Contains(ws.ProxySyncWhy, tc.syncWhy) || (tc.syncWhy == "") != (ws.ProxySyncWhy == "") {
				t.Errorf("kube-proxy %s %v (%q), want %s %v (%q)", ws.ProxyMode, ws.ProxySync, ws.ProxySyncWhy, tc.mode, tc.sync, tc.syncWhy)
			}
		})
	}
}
