package iostreams

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestColorAndPrompt(t *testing.T) {
	s, _, _, _ := Test()
	if s.ColorEnabled() || s.CanPrompt() {
		t.Error("in-memory streams are not terminals")
	}
	s.SetTTY(true)
	if !s.ColorEnabled() || !s.CanPrompt() {
		t.Error("a terminal allows color and prompts")
	}
	s.SetNonInteractive(true)
	s.SetNoColor(true)
	if s.ColorEnabled() || s.CanPrompt() {
		t.Error("--no-color and --non-interactive win over the terminal")
	}
	if got := s.ColorScheme().Red("x"); got != "x" {
		t.Errorf("Red without color = %q", got)
	}
}

// frames counts the spinner frames written through it and closes second
// when the second one starts.
type frames struct {
	w      io.Writer
	n      int
	second chan struct{}
}

func (f *frames) Write(p []byte) (int, error) {
	// Only the spinner's goroutine writes, so n needs no lock.
	if strings.HasPrefix(string(p), "\r\x1b[K") && len(p) > len("\r\x1b[K") {
		f.n++
		if f.n == 2 {
			close(f.second)
		}
	}
	return f.w.Write(p)
}

func TestProgress(t *testing.T) {
	s, _, _, errOut := Test()
	s.StartProgress("deploying")()
	if errOut.Len() != 0 {
		t.Errorf("a spinner without a terminal: %q", errOut.String())
	}
	s.SetTTY(true)
	f := &frames{w: s.ErrOut, second: make(chan struct{})}
	s.ErrOut = f
	stop := s.StartProgress("deploying")
	// The spinner turns: wait for its second frame.
	select {
	case <-f.second:
	case <-time.After(10 * time.Second):
		stop()
		t.Fatalf("timed out waiting for the spinner's second frame: %q", errOut.String())
	}
	stop()
	stop()
	out := errOut.String()
	if !strings.Contains(out, "⠋ deploying (0s)") || !strings.Contains(out, "\r\x1b[K⠙ deploying (") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("spinner output %q", out)
	}
}
