// Command hello is the smoke test's server: it answers every HTTP request
// with a greeting naming the pod, and logs each request. /metrics counts
// the greetings in Prometheus' text format, for the smoke test's check of
// the cluster's Prometheus.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	host, _ := os.Hostname()
	var greeted atomic.Int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("request %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		greeted.Add(1)
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	http.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP hello_requests_total Greetings answered.\n# TYPE hello_requests_total counter\nhello_requests_total %d\n", greeted.Load())
	})
	log.Printf("hello listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
