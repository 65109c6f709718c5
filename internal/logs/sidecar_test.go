package logs

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The pods' sidecars (skiff-relay, an init container that restarts
// always) are read too; plain init containers are not.
func TestSidecarsAreRead(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := runningPod("fn-1", "fn")
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup"}, {Name: "skiff-relay", RestartPolicy: &always}}
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "setup", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
		{Name: "skiff-relay", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	cs := fake.NewSimpleClientset(pod)
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"fn-1/fn":          {ts(2, 0) + " app line\n"},
		"fn-1/skiff-relay": {ts(1, 0) + " relay line\n"},
		"fn-1/setup":       {ts(0, 0) + " setup line\n"},
	}}
	s := &Streamer{Clientset: cs, open: sc.open}
	out := make(chan Line, 10)
	if err := s.Stream(context.Background(), Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Tail: -1}, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	got := map[string]string{}
	for l := range out {
		got[l.Container] = l.Message
	}
	if len(got) != 2 || got["fn"] != "app line" || got["skiff-relay"] != "relay line" {
		t.Errorf("lines by container = %v, want the app's and skiff-relay's", got)
	}
}
