package kube

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/engine"
)

// PodProblem is why one container of a pod is not ready.
type PodProblem = engine.PodProblem

// Diagnose lists what keeps the pods matching selector in ns from being
// ready, with the last logLines lines of crashed containers.
func Diagnose(ctx context.Context, cs kubernetes.Interface, ns, selector string, logLines int64) ([]PodProblem, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	var out []PodProblem
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil {
			continue
		}
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
				out = append(out, PodProblem{Pod: pod.Name, Reason: orDefault(cond.Reason, "Unschedulable"), Message: cond.Message})
			}
		}
		// The containers, then the native sidecars (restartable init
		// containers), whose readiness counts for the pod's as well.
		for _, st := range pod.Status.ContainerStatuses {
			var probe *corev1.Probe
			for _, c := range pod.Spec.Containers {
				if c.Name == st.Name {
					probe = c.ReadinessProbe
				}
			}
			if p, ok := containerProblem(ctx, cs, &pod, st, probe, logLines); ok {
				out = append(out, p)
			}
		}
		for _, st := range pod.Status.InitContainerStatuses {
			c := sidecar(&pod, st.Name)
			if c == nil {
				continue
			}
			if p, ok := containerProblem(ctx, cs, &pod, st, c.ReadinessProbe, logLines); ok {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// containerProblem says why a container of pod is not ready, if it is not.
// probe, when known, is its readiness probe, named in the message.
func containerProblem(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, st corev1.ContainerStatus, probe *corev1.Probe, logLines int64) (PodProblem, bool) {
	if st.Ready {
		return PodProblem{}, false
	}
	p := PodProblem{Pod: pod.Name, Container: st.Name, Image: st.Image, Restarts: st.RestartCount}
	previous := false // whose logs tell why: the current or the previous instance
	switch {
	case st.State.Waiting != nil:
		p.Reason, p.Message = st.State.Waiting.Reason, st.State.Waiting.Message
		if t := st.LastTerminationState.Terminated; t != nil {
			p.ExitCode = &t.ExitCode
			previous = true
		}
	case st.State.Terminated != nil:
		p.Reason, p.Message = orDefault(st.State.Terminated.Reason, "Terminated"), st.State.Terminated.Message
		p.ExitCode = &st.State.Terminated.ExitCode
	case st.State.Running != nil:
		p.Reason = "NotReady"
		p.Message = "the container runs but its readiness probe fails"
		if probe != nil && probe.HTTPGet != nil {
			p.Message = fmt.Sprintf("the container runs but its readiness probe (GET %s on port %s) fails", probe.HTTPGet.Path, probe.HTTPGet.Port.String())
		}
	}
	if p.Reason == "" {
		return PodProblem{}, false
	}
	// Between two back-offs a crash-looping container shows as
	// Terminated (reason Error): call it what it is.
	if p.ExitCode != nil && st.RestartCount >= 2 && (p.Reason == "Error" || p.Reason == "Terminated" || p.Reason == "Completed") {
		p.Reason = "CrashLoopBackOff"
	}
	if p.ExitCode != nil || p.Reason == "NotReady" {
		p.Logs = tail(ctx, cs, pod.Namespace, pod.Name, st.Name, previous, logLines)
	}
	return p, true
}

// sidecar returns pod's native sidecar (an init container that restarts
// always) of that name, or nil.
func sidecar(pod *corev1.Pod, name string) *corev1.Container {
	for i, c := range pod.Spec.InitContainers {
		if c.Name == name && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tail returns the last lines of a container's log: of its previous
// instance when previous is set, falling back to the other one when that
// has none.
func tail(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, previous bool, lines int64) []string {
	if lines <= 0 {
		return nil
	}
	for _, prev := range []bool{previous, !previous} {
		if out := readLog(ctx, cs, ns, pod, container, prev, lines); len(out) > 0 {
			return out
		}
	}
	return nil
}

func readLog(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, previous bool, lines int64) []string {
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous, TailLines: &lines}).Stream(ctx)
	if err != nil {
		return nil
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return nil
	}
	text := strings.TrimRight(string(data), "\n")
	// The kubelet answers this, with a success status, when the instance's
	// log is gone.
	if text == "" || strings.HasPrefix(text, "unable to retrieve container logs") {
		return nil
	}
	return strings.Split(text, "\n")
}
