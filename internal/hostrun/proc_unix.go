//go:build !windows

package hostrun

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr starts the workload in its own process group: a terminal's
// Ctrl-C reaches skiff, which then stops the workload the way Kubernetes
// would (SIGTERM, then SIGKILL); on Linux the workload is also killed
// should skiff itself die.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// terminate sends SIGTERM to the workload's process group.
func terminate(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGTERM) }

// kill sends SIGKILL to the workload's process group.
func kill(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }

// terminated reports whether a process ended by SIGTERM: for a program
// without a SIGTERM handler, the normal way to stop.
func terminated(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}
