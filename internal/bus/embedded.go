package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream inside skiff's own process: the
// bus of `skiff dev --local`. It listens on a free loopback port, asks for
// no credentials, and keeps its streams in a file store of its own.
type Embedded struct {
	srv *server.Server
	// URL is where clients connect: nats://127.0.0.1:<port>.
	URL string
}

// embeddedStart bounds the wait for the server to take connections.
const embeddedStart = 10 * time.Second

// StartEmbedded starts a server whose JetStream store is storeDir (made
// when missing), on a free port of 127.0.0.1.
func StartEmbedded(ctx context.Context, storeDir string) (*Embedded, error) {
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("the local bus's store: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "skiff-dev",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   storeDir,
		// skiff's own process: no log of its own (errors come back from
		// the clients), no signal handlers (main owns the signals).
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("the local bus: %w", err)
	}
	go srv.Start()
	wait := embeddedStart
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("the local bus did not take connections within %s", wait)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("the local bus started without JetStream; is " + storeDir + " writable?")
	}
	return &Embedded{srv: srv, URL: srv.ClientURL()}, nil
}

// Shutdown stops the server (its clients are disconnected) and waits for
// it to have stopped: its port is free and its store closed on return.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
