package bus

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A bus that refuses the connection is said to (not only "no servers
// available"); one that accepts and never answers is given up on within
// the dial's bound, saying so. Loopback only.
func TestDialErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	ctx := context.Background()
	if _, err := Dial(ctx, nil, "nats://"+refused, Auth{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused bus: %v, want it to say the connection was refused", err)
	}

	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	start := time.Now()
	_, err = (&Dialer{Timeout: 200 * time.Millisecond}).Dial(ctx, nil, "nats://"+hung.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("hung bus: %v, want it to say it did not answer", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a hung bus took %s with a bound of 200ms", took)
	}
}
