package iostreams

import (
	"fmt"
	"sync"
	"time"
)

// StartProgress shows a spinner with label and the time elapsed on ErrOut
// until stop is called, when ErrOut is a terminal that may carry escape
// codes (never with NO_COLOR); otherwise it does nothing. stop clears the
// spinner's line.
func (s *IOStreams) StartProgress(label string) (stop func()) {
	if !s.ErrColorEnabled() {
		return func() {}
	}
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.ErrOut, "\r\x1b[K%s %s (%ds)", frames[i%len(frames)], label, int(time.Since(start).Seconds()))
			select {
			case <-done:
				fmt.Fprint(s.ErrOut, "\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
