// Package porttest picks loopback ports for tests that hand a port number
// to a process (skiff.yaml's port, --port) rather than a listener.
//
// Such a port is free when picked but taken only later, once the process
// listens; meanwhile anything else that picks a free port may pick the
// same one. hostrun.FreePort, which skiff uses for the processes it
// starts, picks from 20000–32767 and the kernel's outgoing connections
// from 32768 and up, so tests pick below both, from 10000–19999. Test
// binaries run side by side (go test ./...), so each process picks in a
// slot of that range chosen by its process id. A port is handed out once
// per process: a later test never gets one an earlier test gave to a
// process that may not have let go of it yet.
package porttest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

// handed are the ports this process handed out (the package's one piece
// of state: what it guards is the process's, as the ports are).
var handed struct {
	sync.Mutex
	ports map[int]bool
}

const (
	lo, hi = 10000, 20000
	slots  = 40
	size   = (hi - lo) / slots
)

// Ports returns n different loopback ports nothing listens on, from this
// process's slot, failing t when the slot has not that many free.
func Ports(t testing.TB, n int) []int {
	t.Helper()
	base, start := lo+os.Getpid()%slots*size, rand.IntN(size)
	handed.Lock()
	defer handed.Unlock()
	if handed.ports == nil {
		handed.ports = map[int]bool{}
	}
	var ports []int
	for i := 0; i < size && len(ports) < n; i++ {
		port := base + (start+i)%size
		if handed.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			l.Close()
			ports = append(ports, port)
		}
	}
	for _, port := range ports {
		handed.ports[port] = true
	}
	if len(ports) < n {
		t.Fatalf("%d free loopback ports wanted in %d–%d, found %d", n, base, base+size-1, len(ports))
	}
	return ports
}

// Port returns one loopback port nothing listens on (Ports for one).
func Port(t testing.TB) int {
	t.Helper()
	return Ports(t, 1)[0]
}
