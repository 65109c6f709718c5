//go:build !linux && !windows

package hostrun

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
