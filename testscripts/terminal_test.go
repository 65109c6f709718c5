package testscripts

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// terminalQueries are the questions a program can ask a terminal, whose
// answer it must then wait for: the background and foreground colors
// (OSC 11 and 10), the cursor's position, the device's attributes, the
// keyboard protocol, and (DECRQM) whether a mode is on.
var terminalQueries = []string{"\x1b]11;?", "\x1b]10;?", "\x1b[6n", "\x1b[c", "\x1b[>c", "\x1b[?u"}

var modeQuery = regexp.MustCompile(`\x1b\[\??[0-9;]*\$p`)

// TestCommandsAskTheTerminalNothing runs commands that draw no terminal UI
// on a pseudo-terminal that never answers a query, and checks that skiff
// wrote none (a terminal that does not answer made every command wait 5
// s for a reply: issue 25, item 4) and that it ends on its own.
func TestCommandsAskTheTerminalNothing(t *testing.T) {
	bin := buildSkiff(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"color", []string{"version"}, nil, "skiff "},
		{"NO_COLOR", []string{"version"}, []string{"NO_COLOR=1"}, "skiff "},
		{"no-color flag", []string{"version", "--no-color"}, nil, "skiff "},
		{"json", []string{"version", "-o", "json"}, nil, `"version"`},
		{"help", []string{"--help"}, nil, "Usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = work
			// Nothing in the environment says which terminal it is, or that
			// colors are off, but what the case sets.
			env := []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "SKIFF_CONFIG_DIR=" + filepath.Join(work, ".skiff"), "TERM=xterm-256color"}
			cmd.Env = append(env, tc.env...)
			term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer term.Close()
			var out bytes.Buffer
			read := make(chan error, 1)
			// Read what skiff writes and never answer. Once it has exited,
			// reading ends with EIO.
			go func() { _, err := io.Copy(&out, term); read <- err }()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("skiff %s: %v", strings.Join(tc.args, " "), err)
				}
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				<-exited
				<-read
				t.Fatalf("skiff %s did not end within a minute on a terminal that answers nothing; it wrote %q", strings.Join(tc.args, " "), out.String())
			}
			if err := <-read; err != nil && !errors.Is(err, syscall.EIO) {
				t.Fatalf("reading the terminal: %v", err)
			}
			got := out.String()
			for _, q := range terminalQueries {
				if strings.Contains(got, q) {
					t.Errorf("skiff %s asked the terminal %q; it wrote %q", strings.Join(tc.args, " "), q, got)
				}
			}
			if q := modeQuery.FindString(got); q != "" {
				t.Errorf("skiff %s asked the terminal %q; it wrote %q", strings.Join(tc.args, " "), q, got)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("skiff %s wrote %q, want %q in it", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
}
