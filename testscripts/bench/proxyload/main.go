// Command proxyload measures what skiff-relay's proxy adds to a request:
// it starts a Go HTTP app on loopback and one or more skiff-relay
// binaries (-relay, repeated: e.g. this tree's and a base revision's) in
// front of it as a pod without events runs one (the proxy alone, under
// GOMEMLIMIT), then sends -rate requests a second straight to the app and
// -rate a second through each relay, interleaved, open-loop (each on its
// own goroutine, on kept-alive connections) for -duration after a
// warm-up. It prints the latency percentiles of every path, what each
// relay adds to the direct path, and each relay's resident memory idle
// and after the load.
//
// With -splice, a TCP splice in a process of its own (this binary again:
// no HTTP at all, the floor of any proxy hop) is measured beside them.
//
//	go build -o /tmp/skiff-relay ./cmd/skiff-relay
//	go run ./testscripts/bench/proxyload -relay /tmp/skiff-relay -rate 500 -duration 20s
//	go run ./testscripts/bench/proxyload -relay new=/tmp/skiff-relay -relay base=/tmp/skiff-relay.base -splice
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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-serve-splice" {
		if err := serveSplice(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "proxyload splice:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxyload:", err)
		os.Exit(1)
	}
}

// relays is the repeated -relay flag: [NAME=]PATH.
type relays []relay

type relay struct {
	name, bin        string
	splice           bool // this binary as a TCP splice
	proxyAddr, admin string
	cmd              *exec.Cmd
	idle, loaded     [4]int
	// cpu and switches: the relay's CPU time and its threads' context
	// switches, before and after the load.
	cpu      [2]time.Duration
	switches [2]int
}

func (rs *relays) String() string { return fmt.Sprint(len(*rs)) }

func (rs *relays) Set(v string) error {
	name, bin, ok := strings.Cut(v, "=")
	if !ok {
		name, bin = filepath.Base(v), v
	}
	*rs = append(*rs, relay{name: name, bin: bin})
	return nil
}

func run() error {
	var rs relays
	flag.Var(&rs, "relay", "a skiff-relay binary, as `[NAME=]PATH`; repeat it to compare binaries in the same run")
	rate := flag.Int("rate", 500, "requests per second on each path")
	duration := flag.Duration("duration", 20*time.Second, "how long to measure, after the warm-up")
	warmup := flag.Duration("warmup", 2*time.Second, "how long to send before measuring")
	memLimit := flag.String("gomemlimit", "24MiB", "the relays' GOMEMLIMIT (the chart's proxy.goMemLimit)")
	gogc := flag.String("gogc", "50", "the relays' GOGC (the chart's proxy.goGC)")
	splice := flag.Bool("splice", false, "measure a TCP splice (no HTTP) in a process of its own beside the relays")
	profiles := flag.String("cpuprofile", "", "write each relay's CPU profile of the measured time to `DIR`/NAME.pprof")
	flag.Parse()
	if len(rs) == 0 {
		return errors.New("-relay is required: build it with go build -o /tmp/skiff-relay ./cmd/skiff-relay")
	}
	if *splice {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		rs = append(rs, relay{name: "splice", bin: self, splice: true})
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
	targets := []string{"http://" + app.Addr().String() + "/"}
	names := []string{"direct"}
	for i := range rs {
		r := &rs[i]
		r.proxyAddr, r.admin = freeAddr(), freeAddr()
		r.cmd = exec.Command(r.bin)
		ready := "http://" + r.admin + "/readyz"
		if r.splice {
			r.cmd = exec.Command(r.bin, "-serve-splice", r.proxyAddr, app.Addr().String())
			ready = "http://" + r.proxyAddr + "/"
		}
		r.cmd.Env = append(os.Environ(), "SKIFF_RELAY_TARGET=http://"+app.Addr().String()+"/", "SKIFF_RELAY_PROXY="+r.proxyAddr,
			"SKIFF_RELAY_ADMIN="+r.admin, "GOMEMLIMIT="+*memLimit, "GOGC="+*gogc)
		if *profiles != "" {
			r.cmd.Env = append(r.cmd.Env, "SKIFF_RELAY_PPROF=true")
		}
		r.cmd.Stdout, r.cmd.Stderr = io.Discard, os.Stderr
		if err := r.cmd.Start(); err != nil {
			return err
		}
		// SIGTERM, as the kubelet stops it: a script run in the background
		// by a non-interactive shell starts its children with SIGINT
		// ignored.
		defer func() { r.cmd.Process.Signal(syscall.SIGTERM); r.cmd.Wait() }()
		if err := waitReady(ready); err != nil {
			return err
		}
		r.idle = rss(r.cmd.Process.Pid)
		r.cpu[0], r.switches[0] = cpuTime(r.cmd.Process.Pid), contextSwitches(r.cmd.Process.Pid)
		targets = append(targets, "http://"+r.proxyAddr+"/")
		names = append(names, r.name)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000}}
	var mu sync.Mutex
	lat := make([][]time.Duration, len(targets))
	failed := make([]int, len(targets))
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*rate) / time.Duration(len(targets)) // every path: rate a second each
	begin := time.Now()
	measureFrom := begin.Add(*warmup)
	end := measureFrom.Add(*duration)
	var profiling sync.WaitGroup
	if *profiles != "" {
		for _, r := range rs {
			if r.splice {
				continue
			}
			profiling.Add(1)
			go func() {
				defer profiling.Done()
				time.Sleep(time.Until(measureFrom))
				u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.admin, int(duration.Seconds()))
				if p, err := get(u); err != nil {
					fmt.Fprintln(os.Stderr, "proxyload:", r.name, "profile:", err)
				} else if err := os.WriteFile(filepath.Join(*profiles, r.name+".pprof"), []byte(p), 0o644); err != nil {
					fmt.Fprintln(os.Stderr, "proxyload:", err)
				}
			}()
		}
	}
	for i := 0; ; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if at.After(end) {
			break
		}
		time.Sleep(time.Until(at)) // pacing the open-loop load
		path := i % len(targets)
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
				failed[path]++
				return
			}
			if s.After(measureFrom) {
				lat[path] = append(lat[path], d)
			}
		}()
	}
	wg.Wait()
	profiling.Wait()

	fmt.Printf("| path | requests | failed | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n")
	p := make([][3]time.Duration, len(lat))
	for i, l := range lat {
		slices.Sort(l)
		p[i] = [3]time.Duration{pct(l, 0.50), pct(l, 0.90), pct(l, 0.99)}
		fmt.Printf("| %s | %d | %d | %s | %s | %s | %s |\n", names[i], len(l), failed[i], ms(p[i][0]), ms(p[i][1]), ms(p[i][2]), ms(pct(l, 1)))
	}
	fmt.Println()
	for i := range rs {
		r := &rs[i]
		r.loaded = rss(r.cmd.Process.Pid)
		r.cpu[1], r.switches[1] = cpuTime(r.cmd.Process.Pid), contextSwitches(r.cmd.Process.Pid)
		q := p[i+1]
		fmt.Printf("added by %s at %d req/s: p50 %s, p90 %s, p99 %s\n", r.name, *rate, ms(q[0]-p[0][0]), ms(q[1]-p[0][1]), ms(q[2]-p[0][2]))
	}
	for _, r := range rs {
		fmt.Printf("%s RSS (GOMEMLIMIT=%s GOGC=%s): idle %s, after the load %s (peak %s); of it anonymous: idle %s, after the load %s; the binary's pages: %s\n",
			r.name, *memLimit, *gogc, mib(r.idle[0]), mib(r.loaded[0]), mib(r.loaded[1]), mib(r.idle[2]), mib(r.loaded[2]), mib(r.loaded[3]))
		if n := len(lat[0]) + failed[0]; n > 0 {
			n = int(float64(n) * float64(*warmup+*duration) / float64(*duration)) // with the warm-up's
			fmt.Printf("%s per request: %.0f µs of CPU, %.1f context switches\n", r.name,
				float64((r.cpu[1]-r.cpu[0]).Microseconds())/float64(n), float64(r.switches[1]-r.switches[0])/float64(n))
		}
		if r.splice {
			continue
		}
		metrics, _ := get("http://" + r.admin + "/metrics")
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, "http_server_request_duration_seconds_count") {
				fmt.Println(r.name, "counted:", line)
			}
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

// cpuTime is the process' user and system CPU time (/proc/PID/stat,
// in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name, which may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// contextSwitches adds up the voluntary and involuntary context switches
// of the process' threads.
func contextSwitches(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	n := 0
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && (f[0] == "voluntary_ctxt_switches:" || f[0] == "nonvoluntary_ctxt_switches:") {
				v, _ := strconv.Atoi(f[1])
				n += v
			}
		}
	}
	return n
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

// serveSplice copies every connection to listen to target and back, byte
// for byte: what a proxy hop costs without any HTTP.
func serveSplice(listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		in, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
			io.Copy(in, out)
		}()
	}
}
