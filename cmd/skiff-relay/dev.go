package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/skiffdev/skiff/internal/devsync"
)

// skiff dev's live updates (package devsync) run in the workload's own
// container: an init container of this image installs the binary into a
// shared folder (install), one of the workload's image copies its app
// folder to a writable one (copy), and the workload's container runs
// its process under supervise.

// install copies this program to dest.
func install(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: skiff-relay install DEST")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(args[0]), 0o755); err != nil {
		return err
	}
	tmp := args[0] + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, args[0])
}

// copyDir copies the folder FROM into the existing folder TO.
func copyDir(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: skiff-relay copy FROM TO")
	}
	return devsync.Copy(args[0], args[1])
}

// supervise runs a command under a devsync.Supervisor, with its admin
// endpoint (PUT /sync) on a loopback address: only a port-forward
// reaches it.
func supervise(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("skiff-relay supervise", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	admin := fs.String("admin", "127.0.0.1:9092", "where PUT /sync answers (loopback)")
	ready := fs.String("ready", "", "the process's readiness URL")
	dir := fs.String("dir", "/app", "the app folder syncs write to")
	backup := fs.String("backup", "", "an empty folder on dir's file system for replaced files")
	version := fs.String("version", "", "what the app folder holds (the image's reference): patches name it")
	state := fs.String("state", "", "a file beside the backup folder that keeps what the app folder holds across container restarts")
	timeout := fs.Duration("ready-timeout", time.Minute, "how long a new version may take to get ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *ready == "" || *backup == "" {
		return errors.New("usage: skiff-relay supervise --ready URL --backup DIR [--admin ADDR] [--dir DIR] [--state FILE] [--version REF] [--ready-timeout D] -- COMMAND [ARG...]")
	}
	host, _, err := net.SplitHostPort(*admin)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--admin %s: must be a loopback address (syncs replace the workload's code)", *admin)
	}
	if err := os.MkdirAll(*backup, 0o755); err != nil {
		return err
	}
	s := &devsync.Supervisor{Command: fs.Args(), Dir: *dir, Backup: *backup, Ready: *ready, Version: *version, ReadyTimeout: *timeout,
		State: *state, Stdout: stdout, Stderr: stderr}
	ln, err := net.Listen("tcp", *admin)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return s.Run(ctx)
}
