package cli

import (
	"context"
	"testing"

	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/event"
)

func TestInterruptAction(t *testing.T) {
	for _, tc := range []struct {
		seen int
		over bool
		want interruptActions
	}{
		{1, false, stopTheSession},
		{2, false, cutTheRestore},
		{1, true, cutTheRestore}, // the session ended by itself: the first Ctrl-C cuts
	} {
		if got := interruptAction(tc.seen, tc.over); got != tc.want {
			t.Errorf("interruptAction(%d, over %v) = %v, want %v", tc.seen, tc.over, got, tc.want)
		}
	}
}

// main's interrupts reach dev through its context (the first) and Quit
// (the second): the first ends the session, the second cuts the restore.
func TestDevCountsMainsInterrupts(t *testing.T) {
	parent, signal := context.WithCancel(context.Background())
	defer signal()
	quit := make(chan struct{})
	session, stopSession := context.WithCancel(parent)
	defer stopSession()
	intr := catchInterrupts(parent, stopSession, quit)
	defer intr.close()

	signal() // the first Ctrl-C
	<-session.Done()
	intr.sessionOver()
	if intr.restore.Err() != nil {
		t.Fatal("the Ctrl-C that ended the session cut the restore too")
	}
	close(quit) // the second
	<-intr.restore.Done()
}

// Typed on the panel: the first Ctrl-C ends the session, the second cuts.
func TestDevCountsThePanelsCtrlC(t *testing.T) {
	session, stopSession := context.WithCancel(context.Background())
	defer stopSession()
	intr := catchInterrupts(context.Background(), stopSession, nil)
	defer intr.close()
	intr.interrupt()
	<-session.Done()
	intr.sessionOver()
	if intr.restore.Err() != nil {
		t.Fatal("the first Ctrl-C cut the restore")
	}
	intr.interrupt()
	<-intr.restore.Done()
}

// Without the panel, dev prints where an exposed workload is public once
// its release is deployed, and nothing for one that is not exposed.
func TestDevPrinterSaysWhereAWorkloadIsPublic(t *testing.T) {
	f, _, errOut := testFactoryBuffers(t, false)
	printEvent := devPrinter(f, errOut)
	printEvent(dev.Event{Kind: event.Deployed, Workload: "front", URL: "https://front.shop.example.com/"})
	printEvent(dev.Event{Kind: event.Deployed, Workload: "orders"})
	if got, want := errOut.String(), "  front public at https://front.shop.example.com/\n"; got != want {
		t.Errorf("dev printed %q, want %q", got, want)
	}
}
