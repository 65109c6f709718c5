package cli

import "testing"

// A Ctrl-C ends the session through main's signal context and through
// dev's own count of interrupts; when the first is quicker, dev counts
// that Ctrl-C after the session is over, and it must not cut the restore.
func TestInterruptAction(t *testing.T) {
	for _, tc := range []struct {
		seen              int
		over, byInterrupt bool
		want              interruptActions
	}{
		{1, false, false, stopTheSession},
		{2, false, false, cutTheRestore},
		{1, true, true, ignoreIt}, // the Ctrl-C that ended the session, counted late
		{2, true, true, cutTheRestore},
		{1, true, false, cutTheRestore}, // the session ended by itself: the first Ctrl-C cuts
	} {
		if got := interruptAction(tc.seen, tc.over, tc.byInterrupt); got != tc.want {
			t.Errorf("interruptAction(%d, over %v, by interrupt %v) = %v, want %v", tc.seen, tc.over, tc.byInterrupt, got, tc.want)
		}
	}
}
