package hostrun

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// PortInUseError is a port another program listens on already.
type PortInUseError struct {
	Port int
	// Holder describes the program, e.g. "pid 4242 (python3 main.py)";
	// empty when the system does not tell.
	Holder string
}

func (e *PortInUseError) Error() string {
	who := "another program"
	if e.Holder != "" {
		who = e.Holder
	}
	return fmt.Sprintf("port %d is in use by %s; stop it, or give the workload another port (port: in skiff.yaml, or --port)", e.Port, who)
}

// CheckPort returns a *PortInUseError when a program listens on port.
func CheckPort(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err == nil {
		return l.Close()
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return &PortInUseError{Port: port, Holder: portHolder(port)}
	}
	return nil // not ours to judge (e.g. a privileged port): the workload will say
}
