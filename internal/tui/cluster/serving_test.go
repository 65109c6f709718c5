package cluster

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	restclient "k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

type rawResponse []byte

func (r rawResponse) DoRaw(context.Context) ([]byte, error) { return r, nil }
func (r rawResponse) Stream(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(r))), nil
}

// The dashboard's samples are each ready pod's figures over the sample's
// window, read from its skiff-relay, until the dashboard ends.
func TestClusterServingSamplesThePods(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-5d8f-aaaaa", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "skiff-relay", Ports: []corev1.ContainerPort{{Name: "relay-admin", ContainerPort: 9091}}}},
			Containers:     []corev1.Container{{Name: "app"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	c, cs := newTestCluster(t, ordersDeployment(1), pod)
	c.cfg.SampleEvery = 20 * time.Millisecond
	asked := make(chan string, 100)
	cs.PrependProxyReactor("pods", func(a k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
		pa := a.(k8stesting.ProxyGetAction)
		asked <- pa.GetName() + ":" + pa.GetPort() + "/" + pa.GetPath() + "?window=" + pa.GetParams()["window"]
		body, _ := json.Marshal(stats.Window{Pods: 1, Requests: 7})
		return true, rawResponse(body), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Serving(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case u := <-ch:
			if u.Err != nil || len(u.Stats) != 1 || u.Stats[0].Window.Requests != 7 || u.Stats[0].Source != engine.SourcePods || u.Window != 20*time.Millisecond {
				t.Fatalf("sample %d: %+v", i, u)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no sample %d within 5s", i)
		}
	}
	// The relay keeps 10 s slots: a shorter window is read as one.
	if a := <-asked; a != "orders-5d8f-aaaaa:9091/stats?window=10s" {
		t.Errorf("asked %q", a)
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}
