package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/skiffdev/skiff/internal/natstest"
)

// A Redialer keeps its connection across calls and dials again after a
// call failed.
func TestRedialer(t *testing.T) {
	r := &Redialer{URL: natstest.Start(t)}
	defer r.Close()
	ctx := context.Background()
	var first, second, third *Conn
	if err := r.Do(ctx, func(c *Conn) error { first = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Do(ctx, func(c *Conn) error { second = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("a second call dialled again")
	}
	boom := errors.New("boom")
	if err := r.Do(ctx, func(*Conn) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want f's error", err)
	}
	if !first.NC.IsClosed() {
		t.Error("the connection of a failed call was kept")
	}
	if err := r.Do(ctx, func(c *Conn) error { third = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if third == first || !third.NC.IsConnected() {
		t.Error("after a failed call, no new connection")
	}
	if err := (&Redialer{URL: "nats://127.0.0.1:9"}).Do(ctx, func(*Conn) error { return nil }); err == nil {
		t.Error("a bus that does not answer: no error")
	}
}
