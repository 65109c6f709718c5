package iostreams

import (
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

func TestProgress(t *testing.T) {
	s, _, _, errOut := Test()
	s.StartProgress("deploying")()
	if errOut.Len() != 0 {
		t.Errorf("a spinner without a terminal: %q", errOut.String())
	}
	s.SetTTY(true)
	stop := s.StartProgress("deploying")
	time.Sleep(150 * time.Millisecond)
	stop()
	stop()
	out := errOut.String()
	if !strings.Contains(out, "deploying (0s)") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("spinner output %q", out)
	}
}
