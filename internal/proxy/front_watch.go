package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// watchAfter is how long a request runs, once its caller sent all of it,
// before the front watches the caller's connection; it is noticed going
// away between watchAfter and twice that after.
//
// net/http's server watches every request at once, with a goroutine that
// reads the connection, started and stopped each time; a timer per
// request is hardly cheaper: each goes into the runtime's timer heap and
// wakes the network poller to see it, two or three context switches a
// request (docs/benchmarks.md). So a connection has one timer, which,
// while requests come, fires every watchAfter and watches the one that
// has run that long; an idle connection's timer is not set.
const watchAfter = 100 * time.Millisecond

// watch watches a connection's callers (see watchAfter): one read of the
// connection, which ends with the caller going away (its request's
// context is cancelled), with its next request's first byte (kept for
// it), or when the request's answer is over.
type watch struct {
	c     *frontConn
	timer *time.Timer

	mu      sync.Mutex
	cancel  context.CancelFunc // the request's
	abort   aborter            // aborted with it (watchCaller)
	armed   bool               // the request was all read: watch it
	since   time.Time          // when it was
	pending bool               // the timer is set
	running bool               // the read is on
	done    chan struct{}      // closed when the read ended
	gone    bool
	ended   bool // the connection is over
}

// begin is a new request's, with its context's cancel.
func (w *watch) begin(cancel context.CancelFunc) {
	w.mu.Lock()
	w.cancel, w.armed, w.gone = cancel, false, false
	w.mu.Unlock()
}

// arm starts the request's clock: its caller sent all of it.
func (w *watch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.armed || w.cancel == nil || w.c.br.Buffered() > 0 {
		return // a request waits behind it: the caller is there
	}
	w.armed, w.since = true, time.Now()
	if w.pending {
		return
	}
	w.pending = true
	if w.timer == nil {
		w.timer = time.AfterFunc(watchAfter, w.tick)
	} else {
		w.timer.Reset(watchAfter)
	}
}

// tick is the timer's: it watches the request that ran for watchAfter,
// comes back for one that has not yet, and lets the timer be while none
// is in flight.
func (w *watch) tick() {
	w.mu.Lock()
	switch {
	case w.ended || !w.armed || w.running:
		w.pending = false
		w.mu.Unlock()
		return
	case time.Since(w.since) < watchAfter:
		w.timer.Reset(watchAfter - time.Since(w.since))
		w.mu.Unlock()
		return
	}
	w.pending = false
	w.running, w.done = true, make(chan struct{})
	done, cancel := w.done, w.cancel
	w.mu.Unlock()

	cr := &w.c.cr
	n, err := cr.conn.Read(cr.b[:])
	w.mu.Lock()
	var ne net.Error
	switch {
	case n == 1:
		cr.has = true
	case errors.As(err, &ne) && ne.Timeout():
		// Stopped.
	default:
		w.gone = true
		cancel()
		if a := w.abort; a != nil {
			w.abort = nil
			go a.abort() // as context.AfterFunc runs it
		}
	}
	w.running = false
	w.mu.Unlock()
	close(done)
}

// onGone has a aborted when the request's caller goes away, unless it
// did already (false).
func (w *watch) onGone(a aborter) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone || w.cancel == nil || w.abort != nil {
		return false
	}
	w.abort = a
	return true
}

// offGone ends onGone, and says whether a was not aborted.
func (w *watch) offGone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.abort
	w.abort = nil
	return a != nil
}

// stop ends the watch of the request (its answer went out) and says
// whether its caller went away.
func (w *watch) stop() (gone bool) {
	w.mu.Lock()
	w.armed = false
	running, done := w.running, w.done
	w.mu.Unlock()
	if running {
		w.c.conn.SetReadDeadline(aLongTimeAgo)
		<-done
		w.c.conn.SetReadDeadline(time.Time{})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel, w.done, w.abort = nil, nil, nil
	return w.gone
}

// end stops the timer: the connection is over.
func (w *watch) end() {
	w.mu.Lock()
	w.ended = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}
