package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The test cluster runs on this machine: its processes (nats-server, the
// relay and the handler in their pods, containerd, the kubelet) are in
// this /proc, and a phase's CPU per command says where its events' CPU
// went.

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux the test cluster runs on (getconf CLK_TCK).
const clockTicks = 100

// procKey is one process: its pid and start time (a pid may be reused).
type procKey struct {
	pid   int
	start uint64
}

// cpuSample is every process's CPU time (user, system) in ticks, by
// command, and the machine's busy and total ticks, at one moment.
type cpuSample struct {
	at          time.Time
	procs       map[procKey]procCPU
	busy, total uint64
}

type procCPU struct {
	comm      string
	user, sys uint64
}

// sampleCPU reads /proc.
func sampleCPU() (*cpuSample, error) {
	s := &cpuSample{at: time.Now(), procs: map[procKey]procCPU{}}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	// cpu  user nice system idle iowait irq softirq steal ...
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	for i, f := range strings.Fields(string(line))[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		s.total += v
		if i != 3 && i != 4 { // idle and iowait
			s.busy += v
		}
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+2:]))
		if len(f) < 20 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		user, _ := strconv.ParseUint(f[11], 10, 64)
		sys, _ := strconv.ParseUint(f[12], 10, 64)
		start, _ := strconv.ParseUint(f[19], 10, 64)
		comm := strings.ReplaceAll(string(b[open+1:end]), " ", "_")
		s.procs[procKey{pid, start}] = procCPU{comm: comm, user: user, sys: sys}
	}
	return s, nil
}

// cpuUse is one command's CPU between two samples.
type cpuUse struct {
	comm      string
	user, sys time.Duration
}

// since is what each command used from a to s (a process started
// meanwhile counts from zero, one that ended is left out), the largest
// first, and the machine's busy share of its CPUs.
func (s *cpuSample) since(a *cpuSample) ([]cpuUse, float64) {
	by := map[string]*cpuUse{}
	tick := func(t uint64) time.Duration { return time.Duration(t) * time.Second / clockTicks }
	for k, p := range s.procs {
		was := a.procs[k]
		if p.user+p.sys == was.user+was.sys {
			continue
		}
		u := by[p.comm]
		if u == nil {
			u = &cpuUse{comm: p.comm}
			by[p.comm] = u
		}
		u.user += tick(p.user - was.user)
		u.sys += tick(p.sys - was.sys)
	}
	out := make([]cpuUse, 0, len(by))
	for _, u := range by {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(x, y cpuUse) int {
		return cmp.Or(cmp.Compare(y.user+y.sys, x.user+x.sys), strings.Compare(x.comm, y.comm))
	})
	busy := 0.0
	if s.total > a.total {
		busy = float64(s.busy-a.busy) / float64(s.total-a.total)
	}
	return out, busy
}

// printCPU writes the CPU of a phase of n events: per command (the top
// ones), its user and system time and µs per event.
func printCPU(w io.Writer, phase string, n int, a, b *cpuSample) {
	uses, busy := b.since(a)
	wall := b.at.Sub(a.at)
	var total time.Duration
	for _, u := range uses {
		total += u.user + u.sys
	}
	fmt.Fprintf(w, "\nCPU during %s (%d events, %.2f s wall, the machine %.0f %% busy, %.2f CPU s in all processes, %.0f µs an event):\n\n",
		phase, n, wall.Seconds(), 100*busy, total.Seconds(), perEvent(total, n))
	fmt.Fprintln(w, "| command | user s | system s | µs an event |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, u := range uses[:min(len(uses), 10)] {
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.0f |\n", u.comm, u.user.Seconds(), u.sys.Seconds(), perEvent(u.user+u.sys, n))
	}
}

func perEvent(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
