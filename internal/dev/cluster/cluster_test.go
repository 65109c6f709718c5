package cluster

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// A workload answers at its port plus 10000, which the user can keep in a
// browser tab; when that port is taken, at the next free one.
func TestListenStable(t *testing.T) {
	// A port p whose p+10000 this test can hold.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := hold.Addr().(*net.TCPAddr).Port
	hold.Close()
	if port <= 10000 || port > 65535-20 {
		t.Skipf("the free port %d has no port 10000 below it", port)
	}
	ln, err := listenStable(port - 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("listening at %s, want 127.0.0.1:%d", got, port)
	}
	next, err := listenStable(port - 10000) // the first one is held
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if p := next.Addr().(*net.TCPAddr).Port; p <= port || p >= port+20 {
		t.Errorf("with %d taken, listening at %d; want one of the next 19", port, p)
	}
}

// With all twenty ports taken, the error names the range.
func TestListenStableSaysWhichPortsWereTaken(t *testing.T) {
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := hold.Addr().(*net.TCPAddr).Port
	hold.Close()
	if first <= 10000 || first > 65535-40 {
		t.Skipf("the free port %d has no port 10000 below it", first)
	}
	for p := first; p < first+20; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Skipf("port %d is not free: %v", p, err)
		}
		defer ln.Close()
	}
	_, err = listenStable(first - 10000)
	want := "no free local port from " + strconv.Itoa(first) + " to " + strconv.Itoa(first+19)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want one saying %q", err, want)
	}
}
