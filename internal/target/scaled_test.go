package target

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynfake "k8s.io/client-go/dynamic/fake"

	"github.com/skiffdev/skiff/internal/project"
)

func scaledObject(ready, message string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "orders", "namespace": "shop"},
		"status": map[string]any{"conditions": []any{
			map[string]any{"type": "Ready", "status": ready, "reason": "ScaledObjectCheckFailed", "message": message},
		}},
	}}
}

func withDynamic(c *Cluster, objs ...runtime.Object) {
	c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ScaledObjects: "ScaledObjectList"}, objs...)
}

var scaledOrders = &project.Workload{Name: "orders", Kind: "function", Path: "orders", Port: 9000,
	Scale: &project.Scale{Min: 0, Max: 5, Idle: "2m", Concurrency: 10}}

func TestScaledStates(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		objs    []any
		so      *unstructured.Unstructured
		state   string
		problem string
	}{
		{"idle at zero pods", []any{dep("orders", 0, 0)}, scaledObject("True", ""), StateIdle, ""},
		{"woken", []any{dep("orders", 2, 2), pod("orders-a", true, 0), pod("orders-b", true, 0)}, scaledObject("True", ""), StateReady, ""},
		{"waking", []any{dep("orders", 1, 0), pod("orders-a", false, 0)}, scaledObject("True", ""), StateProgressing, ""},
		{"KEDA refuses it", []any{dep("orders", 0, 0)}, scaledObject("False", "no scaler at that address"), StateDegraded, "KEDA: ScaledObjectCheckFailed: no scaler at that address"},
		{"no ScaledObject", []any{dep("orders", 0, 0)}, nil, StateDegraded, "has no ScaledObject orders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := cluster(t, "", tc.objs...)
			if tc.so != nil {
				withDynamic(c, tc.so)
			} else {
				withDynamic(c)
			}
			tg := c.For(scaledOrders)
			if _, ok := tg.(*Scaled); !ok {
				t.Fatalf("For(scaled workload) = %T, want *Scaled", tg)
			}
			st, err := tg.Status(ctx, deployed(""))
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state {
				t.Errorf("state = %s, want %s (problems %v)", st.State, tc.state, st.Problems)
			}
			if st.Scaling != "0-5 pods on request" {
				t.Errorf("scaling = %q", st.Scaling)
			}
			if st.Healthy() != (tc.state == StateIdle || tc.state == StateReady) {
				t.Errorf("healthy = %t in state %s", st.Healthy(), st.State)
			}
			var msgs []string
			for _, p := range st.Problems {
				msgs = append(msgs, p.Message)
			}
			if got := strings.Join(msgs, "\n"); tc.problem != "" && !strings.Contains(got, tc.problem) {
				t.Errorf("problems = %q, want %q", got, tc.problem)
			}
			// Other workloads reach it through the interceptor's port.
			if st.Endpoint != "http://orders.shop.svc.cluster.local:8080" {
				t.Errorf("endpoint = %s", st.Endpoint)
			}
		})
	}
}

// An event-driven function also wakes on its events, and says so.
func TestScaledOnEvents(t *testing.T) {
	c, _ := cluster(t, "", dep("orders", 0, 0))
	withDynamic(c, scaledObject("True", ""))
	w := *scaledOrders
	w.Triggers = []project.Trigger{{Event: "com.example.order.placed"}}
	st, err := c.For(&w).Status(context.Background(), deployed(""))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateIdle || st.Scaling != "0-5 pods on request or event" {
		t.Errorf("state %s, scaling %q", st.State, st.Scaling)
	}
}

func TestCheckEngines(t *testing.T) {
	ctx := context.Background()
	keda := &metav1.APIResourceList{GroupVersion: "keda.sh/v1alpha1", APIResources: []metav1.APIResource{{Name: "scaledobjects", Kind: "ScaledObject", Namespaced: true}}}
	addon := &metav1.APIResourceList{GroupVersion: "http.keda.sh/v1beta1", APIResources: []metav1.APIResource{{Name: "interceptorroutes", Kind: "InterceptorRoute", Namespaced: true}}}
	interceptor := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "keda-add-ons-http-interceptor-proxy", Namespace: "keda"}}
	for _, tc := range []struct {
		name    string
		apis    []*metav1.APIResourceList
		svc     bool
		ws      []project.Workload
		missing []string
	}{
		{"everything there", []*metav1.APIResourceList{keda, addon}, true, []project.Workload{*scaledOrders}, nil},
		{"no KEDA at all", nil, false, []project.Workload{*scaledOrders},
			[]string{"keda.sh/v1alpha1 ScaledObject API (KEDA)", "http.keda.sh/v1beta1 InterceptorRoute API", "Service keda-add-ons-http-interceptor-proxy in namespace keda"}},
		{"KEDA without the add-on", []*metav1.APIResourceList{keda}, false, []project.Workload{*scaledOrders},
			[]string{"InterceptorRoute API", "interceptor"}},
		{"nothing scaled needs nothing", nil, false, []project.Workload{*orders}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cs := cluster(t, "")
			cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = tc.apis
			if tc.svc {
				if _, err := cs.CoreV1().Services("keda").Create(ctx, interceptor, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			err := c.CheckEngines(ctx, tc.ws)
			if tc.missing == nil {
				if err != nil {
					t.Fatalf("CheckEngines = %v, want nil", err)
				}
				return
			}
			var me *MissingEngineError
			if !errors.As(err, &me) {
				t.Fatalf("CheckEngines = %v, want a MissingEngineError", err)
			}
			for _, m := range tc.missing {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error lacks %q:\n%v", m, err)
				}
			}
			if !strings.Contains(err.Error(), "`scale:` of orders") || !strings.Contains(err.Error(), "docs/serverless.md") {
				t.Errorf("error does not name the workload and the fix: %v", err)
			}
		})
	}
}

func interceptorRoute(ready string) *unstructured.Unstructured {
	o := scaledObject(ready, "")
	o.SetAPIVersion("http.keda.sh/v1beta1")
	o.SetKind("InterceptorRoute")
	return o
}

func TestScaledWaitReady(t *testing.T) {
	ctx := context.Background()
	c, _ := cluster(t, "")
	c.Dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ScaledObjects: "ScaledObjectList", InterceptorRoutes: "InterceptorRouteList"},
		scaledObject("False", "waiting for the scaler"), interceptorRoute("True"))
	tg := c.For(scaledOrders).(*Scaled)

	// Not ready within the deadline: the error says KEDA's last reason.
	short, cancel := context.WithTimeoutCause(ctx, 200*time.Millisecond, errors.New("not ready within 200ms"))
	err := tg.WaitReady(short)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "ScaledObject orders is not ready: ScaledObjectCheckFailed: waiting for the scaler (not ready within 200ms)") {
		t.Fatalf("WaitReady = %v", err)
	}

	// KEDA accepts it: the watch sees it.
	done := make(chan error, 1)
	go func() { done <- tg.WaitReady(ctx) }()
	so := scaledObject("True", "")
	if _, err := c.Dynamic.Resource(ScaledObjects).Namespace("shop").Update(ctx, so, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitDone(t, done, "WaitReady did not see the ScaledObject become ready")
}

// awaitDone fails t with msg unless the call behind done returns, without
// an error, within 10 seconds.
func awaitDone(t *testing.T, done <-chan error, msg string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}
