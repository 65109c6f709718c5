package cmdutil

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ExitInterrupted is the exit code of a process ended by a second
// interrupt (128 + SIGINT, as a shell reports it).
const ExitInterrupted = 130

// Interrupts are the process's interrupts (SIGINT, SIGTERM), caught in
// main and nowhere else. The first cancels Ctx: commands stop waiting and
// undo what they changed (a deploy rolls back, dev restores the cluster).
// The second closes Quit, so whatever still cleans up gives up and says
// what it left, and ends the process Grace later, whatever still runs.
type Interrupts struct {
	// Ctx ends at the first interrupt.
	Ctx context.Context
	// Quit is closed at the second.
	Quit <-chan struct{}

	stop func()
}

// CatchInterrupts catches the process's interrupts until Stop; exit ends
// the process (os.Exit).
func CatchInterrupts(grace time.Duration, exit func(code int)) *Interrupts {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	in := watchInterrupts(sigs, grace, exit)
	stopWatch := in.stop
	in.stop = func() {
		signal.Stop(sigs)
		stopWatch()
	}
	return in
}

// watchInterrupts counts the interrupts that arrive on sigs.
func watchInterrupts(sigs <-chan os.Signal, grace time.Duration, exit func(int)) *Interrupts {
	ctx, cancel := context.WithCancel(context.Background())
	quit := make(chan struct{})
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for seen := 0; ; {
			select {
			case <-done:
				return
			case <-sigs:
			}
			seen++
			if seen == 1 {
				cancel()
				continue
			}
			close(quit)
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-done: // the command returned within the grace
			case <-t.C:
				exit(ExitInterrupted)
			}
			return
		}
	}()
	return &Interrupts{Ctx: ctx, Quit: quit, stop: func() {
		close(done)
		<-finished
		cancel()
	}}
}

// Stop stops catching interrupts.
func (in *Interrupts) Stop() { in.stop() }
