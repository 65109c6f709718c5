// Command hello is the smoke test's server: it answers every HTTP request
// with a greeting naming the pod, and logs each request.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("request %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	log.Printf("hello listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
