package hostrun

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing on Windows: there is no SIGTERM to forward.
func setProcAttr(*exec.Cmd) {}

// terminate ends the workload: Windows has no SIGTERM, so it is killed.
func terminate(p *os.Process) error { return p.Kill() }

func kill(p *os.Process) error { return p.Kill() }

// terminated reports whether a process was ended by terminate.
func terminated(*exec.ExitError) bool { return true }
