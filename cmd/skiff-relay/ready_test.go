package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// workload is a RoundTripper standing for the workload: refused answers
// as a port nobody listens on does, that many times, then status.
type workload struct {
	refused int32
	status  int
	err     error
	calls   atomic.Int32
}

func (wl *workload) RoundTrip(r *http.Request) (*http.Response, error) {
	n := wl.calls.Add(1)
	if n <= wl.refused {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	if wl.err != nil {
		return nil, wl.err
	}
	return &http.Response{StatusCode: wl.status, Body: http.NoBody, Request: r}, nil
}

func TestWorkloadReady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wl     *workload
		wait   time.Duration
		status int
		calls  int32
		body   string
	}{
		{"refused while it starts, then ready", &workload{refused: 3, status: http.StatusOK}, time.Minute, http.StatusOK, 4, ""},
		{"not ready is answered at once", &workload{status: http.StatusServiceUnavailable}, time.Minute, http.StatusServiceUnavailable, 1, ""},
		{"never listens", &workload{refused: 1 << 30}, 20 * time.Millisecond, http.StatusServiceUnavailable, -1, "takes no connections at http://127.0.0.1:8080/readyz yet"},
		{"another failure is not waited on", &workload{err: errors.New("boom")}, time.Minute, http.StatusServiceUnavailable, 1, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := workloadReady(&http.Client{Transport: tc.wl}, "http://127.0.0.1:8080/readyz", tc.wait, time.Millisecond)
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(http.MethodGet, "/workload/ready", nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("answered %d %q, want %d with %q", rec.Code, rec.Body.String(), tc.status, tc.body)
			}
			if got := tc.wl.calls.Load(); tc.calls >= 0 && got != tc.calls {
				t.Errorf("asked the workload %d times, want %d", got, tc.calls)
			}
		})
	}
}
