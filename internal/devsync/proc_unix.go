//go:build !windows

package devsync

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so a stop reaches
// what the workload started too.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to cmd's process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}
