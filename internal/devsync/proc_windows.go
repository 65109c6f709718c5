package devsync

import (
	"os/exec"
	"syscall"
)

// The supervisor runs in Linux containers; on Windows (skiff's own build)
// it signals the process alone.
func ownGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return cmd.Process.Kill()
	}
	return cmd.Process.Signal(sig)
}
