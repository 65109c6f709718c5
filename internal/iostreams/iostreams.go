// Package iostreams holds the three standard streams of a command together
// with what is known about them: whether they are terminals, whether color
// may be used and whether the user may be prompted.
package iostreams

import (
	"bytes"
	"io"
	"os"
	"sync"

	"github.com/mattn/go-isatty"
)

// IOStreams is the terminal a command talks to. Data goes to Out, progress
// and messages to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool

	noColor        bool
	nonInteractive bool
}

// System returns the process's streams, probing each for a terminal and
// honouring NO_COLOR.
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    &syncWriter{w: os.Stderr},
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		s.noColor = true
	}
	return s
}

// Test returns in-memory streams that are not terminals, and the buffers
// behind them.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: &syncWriter{w: errOut}}, in, out, errOut
}

// syncWriter serialises writes: the spinner, progress lines, an interrupt
// notice and Helm's log may all write ErrOut at once.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// SetTTY marks all three streams as terminals or not (for tests).
func (s *IOStreams) SetTTY(tty bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = tty, tty, tty
}

// IsStdoutTTY reports whether Out is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether ErrOut is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetNoColor turns color off whatever the terminal.
func (s *IOStreams) SetNoColor(v bool) { s.noColor = s.noColor || v }

// SetNonInteractive forbids prompts whatever the terminal.
func (s *IOStreams) SetNonInteractive(v bool) { s.nonInteractive = s.nonInteractive || v }

// ColorEnabled reports whether Out may carry ANSI colors.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// ErrColorEnabled reports whether ErrOut may carry ANSI colors.
func (s *IOStreams) ErrColorEnabled() bool { return s.stderrTTY && !s.noColor }

// CanPrompt reports whether the user may be asked questions: both stdin and
// stdout are terminals and prompts were not switched off.
func (s *IOStreams) CanPrompt() bool {
	return s.stdinTTY && s.stdoutTTY && !s.nonInteractive
}

// ColorScheme returns the palette for ErrOut messages.
func (s *IOStreams) ColorScheme() ColorScheme { return ColorScheme{enabled: s.ErrColorEnabled()} }

// ColorScheme wraps text in ANSI colors when enabled.
type ColorScheme struct{ enabled bool }

func (c ColorScheme) wrap(code, s string) string {
	if !c.enabled {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Green is for success.
func (c ColorScheme) Green(s string) string { return c.wrap("32", s) }

// Red is for failure.
func (c ColorScheme) Red(s string) string { return c.wrap("31", s) }

// Yellow is for warnings.
func (c ColorScheme) Yellow(s string) string { return c.wrap("33", s) }

// Bold is for emphasis.
func (c ColorScheme) Bold(s string) string { return c.wrap("1", s) }

// SuccessIcon is a check mark, colored when enabled.
func (c ColorScheme) SuccessIcon() string { return c.Green("✓") }

// FailureIcon is a cross, colored when enabled.
func (c ColorScheme) FailureIcon() string { return c.Red("✗") }

// WarningIcon marks a message about something skiff fixed or worked around.
func (c ColorScheme) WarningIcon() string { return c.Yellow("!") }
