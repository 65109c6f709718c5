package engine

import (
	"fmt"
	"strings"
	"time"
)

// States of a workload.
const (
	StateReady       = "Ready"
	StateProgressing = "Progressing"
	StateDegraded    = "Degraded"
	StateFailed      = "Failed"
	StateNotDeployed = "NotDeployed"
	// StateIdle is a deployed workload deliberately at zero pods.
	StateIdle = "Idle"
)

// Status is what runs of one workload.
type Status struct {
	Workload  string `json:"workload"`
	Kind      string `json:"kind"`
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Environment is the environment of skiff.yaml the status is of.
	Environment string `json:"environment,omitempty"`
	Revision    int    `json:"revision,omitempty"`
	Status      string `json:"releaseStatus,omitempty"` // Helm's
	State       string `json:"state"`                   // skiff's summary
	Image       string `json:"image,omitempty"`
	Ready       int32  `json:"ready"`
	Desired     int32  `json:"desired"`
	Restarts    int32  `json:"restarts"`
	Endpoint    string `json:"endpoint,omitempty"`
	// URL is the public URL of an exposed workload.
	URL string `json:"url,omitempty"`
	// Scaling says how KEDA scales it ("0-5 pods on request"), when it does.
	Scaling  string       `json:"scaling,omitempty"`
	Updated  time.Time    `json:"updated,omitempty"`
	Problems []PodProblem `json:"problems,omitempty"`
	// Events is the backlog of its triggers on the event bus, when it
	// has triggers and the bus was read.
	Events *EventLag `json:"events,omitempty"`
	// Serving is how it served over the window asked (status -o wide and
	// -o json; nil when not read).
	Serving *Serving `json:"serving,omitempty"`
}

// EventLag is a workload's backlog on the event bus: the events of its
// triggers waiting or in flight, and its dead letters.
type EventLag struct {
	Lag         uint64 `json:"lag"`
	DeadLetters uint64 `json:"deadLetters"`
}

// Healthy reports whether the workload runs as it should: all its pods
// ready, or idle on purpose.
func (s *Status) Healthy() bool { return s.State == StateReady || s.State == StateIdle }

// PodProblem is why one container of a pod is not ready.
type PodProblem struct {
	Pod       string   `json:"pod"`
	Container string   `json:"container"`
	Reason    string   `json:"reason"`            // e.g. CrashLoopBackOff, ImagePullBackOff, Unschedulable
	Message   string   `json:"message,omitempty"` // Kubernetes' message
	Image     string   `json:"image,omitempty"`
	ExitCode  *int32   `json:"exitCode,omitempty"`
	Restarts  int32    `json:"restarts"`
	Logs      []string `json:"logs,omitempty"` // last lines of the (previous) container
}

func (p PodProblem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s: %s", p.Pod, p.Reason)
	switch {
	case strings.Contains(p.Reason, "ImagePull") || p.Reason == "ErrImagePull" || p.Reason == "InvalidImageName":
		fmt.Fprintf(&b, " for image %s", p.Image)
	case p.ExitCode != nil:
		fmt.Fprintf(&b, " (exit code %d, %d restarts)", *p.ExitCode, p.Restarts)
	}
	if p.Message != "" {
		fmt.Fprintf(&b, ": %s", firstLine(p.Message))
	}
	if len(p.Logs) > 0 {
		b.WriteString("\n  last log lines:")
		for _, l := range p.Logs {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// fatalReasons are waiting reasons that do not heal by themselves.
var fatalReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// Fatal reports whether the problem will not go away by waiting.
func (p PodProblem) Fatal() bool {
	return fatalReasons[p.Reason] || (p.Reason == "Error" && p.Restarts >= 2)
}
