package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name string, st corev1.ContainerStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "x"}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{st}},
	}
}

func TestDiagnose(t *testing.T) {
	cs := fake.NewSimpleClientset(
		pod("crash", corev1.ContainerStatus{Name: "app", RestartCount: 3,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}}}),
		pod("pull", corev1.ContainerStatus{Name: "app", Image: "r/x@sha256:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}),
		pod("fine", corev1.ContainerStatus{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}),
	)
	problems, err := Diagnose(context.Background(), cs, "ns", "app=x", 5)
	if err != nil {
		t.Fatal(err)
	}
	byPod := map[string]PodProblem{}
	for _, p := range problems {
		byPod[p.Pod] = p
	}
	if len(problems) != 2 {
		t.Fatalf("problems = %+v", problems)
	}
	crash := byPod["crash"]
	if crash.Reason != "CrashLoopBackOff" || !crash.Fatal() || *crash.ExitCode != 2 || len(crash.Logs) == 0 {
		t.Errorf("crash = %+v", crash)
	}
	pull := byPod["pull"]
	if !pull.Fatal() || !strings.Contains(pull.String(), "ImagePullBackOff for image r/x@sha256:1: not found") {
		t.Errorf("pull = %s", pull)
	}
}

// A native sidecar's readiness counts for the pod's (skiff's relay holds
// the workload's readiness probe): a running sidecar that is not ready is
// a problem, named with its probe; a ready one and a plain init container
// that finished are not.
func TestDiagnoseSidecar(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/workload/ready", Port: intstr.FromString("relay-admin")}}}
	p := pod("waking", corev1.ContainerStatus{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	p.Spec.InitContainers = []corev1.Container{{Name: "setup"}, {Name: "skiff-relay", RestartPolicy: &always, ReadinessProbe: probe}}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "setup", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}},
		{Name: "skiff-relay", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	ready := pod("ready", corev1.ContainerStatus{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	ready.Spec.InitContainers = p.Spec.InitContainers
	ready.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "skiff-relay", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}

	problems, err := Diagnose(context.Background(), fake.NewSimpleClientset(p, ready), "ns", "app=x", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 {
		t.Fatalf("problems = %+v, want the waking pod's sidecar alone", problems)
	}
	got := problems[0]
	if got.Pod != "waking" || got.Container != "skiff-relay" || got.Reason != "NotReady" ||
		!strings.Contains(got.Message, "readiness probe (GET /workload/ready on port relay-admin) fails") {
		t.Errorf("problem = %+v", got)
	}
}
