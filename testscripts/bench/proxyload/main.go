// Command proxyload measures what skiff-relay's proxy adds to a request:
// it starts a Go HTTP app on loopback and the skiff-relay binary (-relay)
// in front of it as a pod without events runs it (the proxy alone, under
// GOMEMLIMIT), then sends -rate requests a second to the proxy and -rate a
// second straight to the app, interleaved, open-loop (each on its own
// goroutine, on kept-alive connections) for -duration after a warm-up.
// It prints the latency percentiles of both paths and their difference,
// and the relay's resident memory idle and after the load.
//
//	go build -o /tmp/skiff-relay ./cmd/skiff-relay
//	go run ./testscripts/bench/proxyload -relay /tmp/skiff-relay -rate 500 -duration 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxyload:", err)
		os.Exit(1)
	}
}

func run() error {
	relayBin := flag.String("relay", "", "the skiff-relay binary")
	rate := flag.Int("rate", 500, "requests per second on each path")
	duration := flag.Duration("duration", 20*time.Second, "how long to measure, after the warm-up")
	warmup := flag.Duration("warmup", 2*time.Second, "how long to send before measuring")
	memLimit := flag.String("gomemlimit", "24MiB", "the relay's GOMEMLIMIT (the chart's proxy.goMemLimit)")
	gogc := flag.String("gogc", "50", "the relay's GOGC (the chart's proxy.goGC)")
	flag.Parse()
	if *relayBin == "" {
		return errors.New("-relay is required: build it with go build -o /tmp/skiff-relay ./cmd/skiff-relay")
	}

	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := []byte(`{"message":"Hello, World!"}`)
	go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	proxyAddr, adminAddr := freeAddr(), freeAddr()
	cmd := exec.Command(*relayBin)
	cmd.Env = append(os.Environ(), "SKIFF_RELAY_TARGET=http://"+app.Addr().String()+"/", "SKIFF_RELAY_PROXY="+proxyAddr,
		"SKIFF_RELAY_ADMIN="+adminAddr, "GOMEMLIMIT="+*memLimit, "GOGC="+*gogc)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	if err := waitReady("http://" + adminAddr + "/readyz"); err != nil {
		return err
	}
	idle := rss(cmd.Process.Pid)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000}}
	targets := []string{"http://" + app.Addr().String() + "/", "http://" + proxyAddr + "/"}
	var mu sync.Mutex
	lat := [2][]time.Duration{}
	var failed int
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*rate) / 2 // both paths: 2×rate a second in all
	begin := time.Now()
	measureFrom := begin.Add(*warmup)
	end := measureFrom.Add(*duration)
	for i := 0; ; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if at.After(end) {
			break
		}
		time.Sleep(time.Until(at)) // pacing the open-loop load
		path := i % 2
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			resp, err := client.Get(targets[path])
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			d := time.Since(s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			if s.After(measureFrom) {
				lat[path] = append(lat[path], d)
			}
		}()
	}
	wg.Wait()
	loaded := rss(cmd.Process.Pid)
	metrics, _ := get("http://" + adminAddr + "/metrics")

	fmt.Printf("| path | requests | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	names := []string{"direct", "proxy"}
	var p [2][3]time.Duration
	for i, l := range lat {
		slices.Sort(l)
		p[i] = [3]time.Duration{pct(l, 0.50), pct(l, 0.90), pct(l, 0.99)}
		fmt.Printf("| %s | %d | %s | %s | %s | %s |\n", names[i], len(l), ms(p[i][0]), ms(p[i][1]), ms(p[i][2]), ms(l[len(l)-1]))
	}
	fmt.Printf("\nadded by the proxy at %d req/s: p50 %s, p90 %s, p99 %s; failed requests: %d\n", *rate,
		ms(p[1][0]-p[0][0]), ms(p[1][1]-p[0][1]), ms(p[1][2]-p[0][2]), failed)
	fmt.Printf("relay RSS (GOMEMLIMIT=%s GOGC=%s): idle %s, after the load %s (peak %s); of it anonymous: idle %s, after the load %s; the binary's pages: %s\n",
		*memLimit, *gogc, mib(idle[0]), mib(loaded[0]), mib(loaded[1]), mib(idle[2]), mib(loaded[2]), mib(loaded[3]))
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "http_server_request_duration_seconds_count") {
			fmt.Println("relay counted:", line)
		}
	}
	return nil
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func mib(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// rss is the process' resident set, its peak, and of the resident set
// what is its own memory and what the binary's pages (VmRSS, VmHWM,
// RssAnon, RssFile), in KiB.
func rss(pid int) [4]int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return [4]int{}
	}
	var out [4]int
	for _, line := range strings.Split(string(b), "\n") {
		for i, key := range []string{"VmRSS:", "VmHWM:", "RssAnon:", "RssFile:"} {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
				out[i], _ = strconv.Atoi(f[1])
			}
		}
	}
	return out
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, err := get(u); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling the relay's start, with a deadline
	}
	return fmt.Errorf("%s did not answer", u)
}

func get(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %d", u, resp.StatusCode)
	}
	return string(b), err
}
