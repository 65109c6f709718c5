package main

import (
	"fmt"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"
)

// maxProfile bounds the CPU profile one request to /debug/pprof/profile
// may take.
const maxProfile = 5 * time.Minute

// profileHandler serves the relay's profiles on the admin port when
// --pprof (SKIFF_RELAY_PPROF=true) is set, for `go tool pprof`:
// /debug/pprof/profile?seconds=N is a CPU profile of the next N seconds
// (default 30), /debug/pprof/allocs and /debug/pprof/heap the memory's,
// /debug/pprof/goroutine the goroutines'. Without --pprof, serve turns the
// memory profiler off (runtime.MemProfileRate 0).
func profileHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		secs := 30
		if s := r.URL.Query().Get("seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || time.Duration(n)*time.Second > maxProfile {
				http.Error(w, fmt.Sprintf("seconds must be a whole number from 1 to %d", int(maxProfile.Seconds())), http.StatusBadRequest)
				return
			}
			secs = n
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			// Another profile is running: it has not written to w yet.
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		t := time.NewTimer(time.Duration(secs) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			http.Error(w, "no profile "+r.PathValue("name")+": profile, allocs, heap, goroutine, block, mutex, threadcreate", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		p.WriteTo(w, 0)
	})
	return mux
}
