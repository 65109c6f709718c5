package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/tui"
)

// devOutput is where `skiff dev` writes: the workloads' logs, the loop's
// messages and events. Plain, logs go to stdout and the rest to stderr; on
// a terminal (both of them, table output, no --no-tui) everything prints
// above tui.DevStatus, the panel of the workloads' states.
type devOutput struct {
	logs, messages io.Writer
	// event renders one of the loop's events.
	event func(dev.Event)
	// logEvents, with -o json, turns every log line into a Log event on
	// stdout (nil: logs are plain lines).
	logEvents *dev.Emitter
	// stop ends the panel (it leaves its last state on the terminal).
	stop func()
}

func newDevOutput(f *cmdutil.Factory, noTUI bool, workloads []string, interrupt func(), run string) *devOutput {
	ios := f.IOStreams
	if o := f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
		// One schema for every line: the loop's events and messages on
		// stderr, the workloads' log lines on stdout, all events.
		events := &dev.Emitter{Sink: jsonLines(ios.ErrOut), Run: run}
		notice := func(line string) {
			if line != "" {
				events.Emit(event.Event{Kind: event.Notice, Message: line})
			}
		}
		return &devOutput{logs: ios.Out, messages: &lineWriter{line: notice},
			event: jsonLines(ios.ErrOut), logEvents: &dev.Emitter{Sink: jsonLines(ios.Out), Run: run}, stop: func() {}}
	}
	if noTUI || !ios.CanPrompt() || (f.Globals.Output != "" && f.Globals.Output != cmdutil.FormatTable) || !ios.IsStdoutTTY() || !ios.IsStderrTTY() {
		return &devOutput{logs: ios.Out, messages: ios.ErrOut, event: devPrinter(f, ios.ErrOut), stop: func() {}}
	}
	panel := tui.NewDevStatus(workloads, ios.ColorEnabled())
	// The terminal is raw while the panel runs (typed keys would scribble
	// over it), so Ctrl-C arrives as a key: the panel passes it on.
	panel.Interrupt = interrupt
	p := tea.NewProgram(panel, programOptions(ios)...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Run()
	}()
	w := &lineWriter{line: printAbove(p, panel.Width)}
	printEvent := devPrinter(f, w)
	var once sync.Once
	return &devOutput{logs: w, messages: w,
		event: func(ev dev.Event) {
			printEvent(ev)
			p.Send(tui.DevEventMsg(ev))
		},
		stop: func() {
			once.Do(func() {
				w.flush()
				p.Quit()
				<-done
			})
		}}
}

// programOptions are the options of every bubbletea program skiff runs:
// the command's streams, main's signal handling alone, and no color when
// colors are off (NO_COLOR or --no-color; the program honours the first
// by itself, not the flag).
func programOptions(ios *iostreams.IOStreams) []tea.ProgramOption {
	opts := []tea.ProgramOption{tea.WithInput(ios.In), tea.WithOutput(ios.Out), tea.WithoutSignalHandler()}
	if !ios.ColorEnabled() {
		opts = append(opts, tea.WithColorProfile(colorprofile.Ascii))
	}
	return opts
}

// printAbove prints a line above a bubbletea program's view, wrapped to
// the terminal's width: a line the terminal wrapped itself would throw off
// the program's count of the lines it drew.
func printAbove(p *tea.Program, width func() int) func(string) {
	return func(line string) {
		if n := width(); n > 1 {
			line = ansi.Hardwrap(line, n-1, true)
		}
		p.Println(line)
	}
}

// lineWriter hands each whole line written to it to line, without its
// newline; flush hands over what follows the last newline.
type lineWriter struct {
	line func(string)
	mu   sync.Mutex
	buf  []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// jsonLines writes each event as one JSON line on w.
func jsonLines(w io.Writer) func(event.Event) {
	var mu sync.Mutex
	return func(ev event.Event) {
		data, err := json.Marshal(ev)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s\n", data)
	}
}
