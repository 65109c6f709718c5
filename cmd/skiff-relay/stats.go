package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/skiffdev/skiff/internal/proxy"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/stats"
)

// metricsHandler serves /metrics: the proxy's series (when it runs) and,
// with events, the relay's.
func metricsHandler(pm *proxy.Metrics, rm *relay.Metrics, events bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if pm != nil {
			if err := pm.Write(w); err != nil {
				return
			}
		}
		if events {
			rm.Write(w)
		}
	})
}

// DefaultWindow is /stats' window when the request names none.
const DefaultWindow = 5 * time.Minute

// statsHandler serves /stats?window=5m: what the pod served in the
// window, as the JSON of a stats.Window (skiff status -o wide, top and
// dash read it through the API server's pod proxy).
func statsHandler(pm *proxy.Metrics, rm *relay.Metrics, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := DefaultWindow
		if v := r.URL.Query().Get("window"); v != "" {
			var err error
			if d, err = time.ParseDuration(v); err != nil || d < stats.Slot || d > stats.RingSpan {
				http.Error(w, fmt.Sprintf("window %q: want a duration from %s to %s, e.g. 5m", v, stats.Slot, stats.RingSpan), http.StatusBadRequest)
				return
			}
		}
		t := now()
		var win stats.Window
		if pm != nil {
			win = pm.Window(t, d)
		} else {
			var empty stats.Ring
			win = empty.Window(t, d)
		}
		win.Triggers = rm.Window(t, d)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(win)
	})
}
