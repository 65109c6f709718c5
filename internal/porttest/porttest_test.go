package porttest

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestPortsAreFreeDistinctAndInTheSlot(t *testing.T) {
	base := lo + os.Getpid()%slots*size
	ports := Ports(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < base || p >= base+size {
			t.Errorf("port %d outside this process's slot %d–%d", p, base, base+size-1)
		}
		if seen[p] {
			t.Errorf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d is not free: %v", p, err)
			continue
		}
		defer l.Close() // held, so the next pick must skip it
	}
	for _, p := range Ports(t, 20) {
		if seen[p] {
			t.Errorf("port %d, held, was picked again", p)
		}
	}
}

func TestPortsAreHandedOutOncePerProcess(t *testing.T) {
	first := Ports(t, 10) // not held: free again at once
	again := map[int]bool{}
	for range 10 {
		for _, p := range Ports(t, 5) {
			again[p] = true
		}
	}
	for _, p := range first {
		if again[p] {
			t.Errorf("port %d handed out twice", p)
		}
	}
}
