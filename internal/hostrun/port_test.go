package hostrun

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortIsFreeAndBelowTheEphemeralRanges(t *testing.T) {
	taken := map[int]bool{}
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 20000 || port >= 32768 {
			t.Fatalf("FreePort() = %d, want a port in [20000, 32768)", port)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("FreePort() = %d, but listening there: %v", port, err)
		}
		defer l.Close() // held, so the next picks must avoid it
		taken[port] = true
	}
	if len(taken) != 20 {
		t.Errorf("20 picks while the earlier ones were held gave %d ports", len(taken))
	}
}
