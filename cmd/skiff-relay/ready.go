package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/skiffdev/skiff/internal/relay"
)

// readyWait is how long /workload/ready waits for a workload that takes no
// connections yet: under the probe's timeoutSeconds, 2, in skiff's chart.
const readyWait = 1500 * time.Millisecond

// workloadReady answers the workload's readiness for the kubelet (in
// skiff's chart, the relay's own readiness probe when the workload has
// no startup probe): it asks the workload's own readiness URL and
// answers what that answers. While the workload takes no connections
// yet (its process is starting, or not started), it asks again every
// step until wait has passed.
//
// The kubelet probes readiness once a period (at least a second): a
// probe that fails because the process does not listen yet costs a wake
// from zero up to that second. The relay starts before the workload, so
// its probe is usually held here already when the workload starts, and
// passes as soon as the workload answers.
// A workload that answers "not ready" is answered at once, so a pod that
// turns unready later is taken out of its Service as fast as before.
func workloadReady(client *http.Client, url string, wait, step time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		for {
			status, err := relay.AskReady(ctx, client, url)
			if err == nil {
				w.WriteHeader(status)
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			t := time.NewTimer(step)
			select {
			case <-ctx.Done():
				t.Stop()
				http.Error(w, fmt.Sprintf("the workload takes no connections at %s yet", url), http.StatusServiceUnavailable)
				return
			case <-t.C:
			}
		}
	}
}

// drainQuiet is how long /drain waits, from its call, without a new request through the
// proxy before the workload is told to stop, at most drainQuietMax: a
// terminating pod's endpoint leaves kube-proxy's rules within its
// minSyncPeriod (1 s by default) and the KEDA interceptor's endpoint cache
// about as fast, and callers routed to it meanwhile must find the
// workload still answering.
const drainQuiet, drainQuietMax = time.Second, 10 * time.Second
