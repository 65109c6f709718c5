// Package metrics reads how workloads serve: each ready pod's figures from
// its skiff-relay proxy through the API server (Pods), or the same figures
// by PromQL from a Prometheus that scrapes the pods (Prometheus). Both give
// engine.WorkloadStats, so status -o wide, top and the dashboard do not
// care which answered.
package metrics

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
)

// Target is one workload whose figures are read.
type Target struct {
	Workload string
	// Selector is the label selector of its pods.
	Selector string
	// Deployment is the name of the Deployment that holds its pods: a
	// Prometheus' series are matched to it by pod name.
	Deployment string
}

// Reader reads what each target served over the last window.
type Reader interface {
	Read(ctx context.Context, ts []Target, window time.Duration) ([]engine.WorkloadStats, error)
}

// podPattern matches the names of a Deployment's pods: the Deployment's
// name, its ReplicaSet's hash, the pod's suffix.
func podPattern(deployment string) string {
	return regexp.QuoteMeta(deployment) + `-[a-z0-9]+-[a-z0-9]+`
}

// formatWindow writes d as the relay's and PromQL's windows read it:
// whole minutes as "5m", else whole seconds ("90s"), at least 1s.
func formatWindow(d time.Duration) string {
	if d%time.Minute == 0 && d > 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", max(int64((d+time.Second-1)/time.Second), 1))
}
