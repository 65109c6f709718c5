package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// procRecord is what the state dir keeps about one started process, enough
// to find exactly that process again: a pid alone could have been reused.
type procRecord struct {
	Name      string   `json:"name"`
	Pid       int      `json:"pid"`
	StartTime string   `json:"startTime"` // field 22 of /proc/<pid>/stat
	Args      []string `json:"args"`
}

func (c *cluster) pidDir() string { return c.state("pids") }

// start runs a daemon in its own session with its output in
// logs/<name>.log, and records it in pids/<name>.json.
func (c *cluster) start(name string, env []string, argv ...string) (*procRecord, error) {
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.pidDir(), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(c.logDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s started by skiff cluster up: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = c.cfg.StateDir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	rec := &procRecord{Name: name, Pid: cmd.Process.Pid, Args: argv}
	rec.StartTime, _ = procStartTime(rec.Pid)
	// The process outlives this program; release it instead of waiting.
	if err := cmd.Process.Release(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.pidDir(), name+".json"), data, 0o644); err != nil {
		return nil, err
	}
	c.logf("started %s (pid %d)", name, rec.Pid)
	return rec, nil
}

func procStartTime(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces; fields after ')' are plain.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("odd /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("odd /proc/%d/stat", pid)
	}
	return f[19], nil // field 22 overall
}

// alive reports whether the recorded process is still that process and has
// not exited (a zombie counts as gone).
func (r *procRecord) alive() bool {
	st, err := procStartTime(r.Pid)
	if err != nil || st != r.StartTime {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.Pid))
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func (c *cluster) readRecord(name string) (*procRecord, error) {
	data, err := os.ReadFile(filepath.Join(c.pidDir(), name+".json"))
	if err != nil {
		return nil, err
	}
	var r procRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// stop ends the recorded process: SIGTERM, then SIGKILL after grace. A
// record whose process is gone (or whose pid now names another process) is
// just removed.
func (c *cluster) stop(name string, grace time.Duration) error {
	r, err := c.readRecord(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.alive() {
		_ = syscall.Kill(r.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for r.alive() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if r.alive() {
			c.logf("%s (pid %d) ignored SIGTERM; killing it", name, r.Pid)
			_ = syscall.Kill(r.Pid, syscall.SIGKILL)
			for i := 0; r.alive() && i < 50; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		c.logf("stopped %s (pid %d)", name, r.Pid)
	}
	return os.Remove(filepath.Join(c.pidDir(), name+".json"))
}

// waitFor polls check until it succeeds, the timeout passes, or the named
// process dies (then its log's tail is part of the error).
func (c *cluster) waitFor(ctx context.Context, what string, proc *procRecord, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err // not the deadline's own error: the reason before it
		}
		if proc != nil && !proc.alive() {
			return fmt.Errorf("%s exited; last lines of %s:\n%s", proc.Name,
				filepath.Join(c.logDir(), proc.Name+".log"), c.logTail(proc.Name, 30))
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("timed out after %s waiting for %s: %v", timeout, what, last)
			if proc != nil {
				msg += fmt.Sprintf("\nlast lines of %s:\n%s", filepath.Join(c.logDir(), proc.Name+".log"), c.logTail(proc.Name, 30))
			}
			return errors.New(msg)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *cluster) logTail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(c.logDir(), name+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
