package hostrun

import (
	"errors"
	"fmt"
	"math/rand/v2"
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

// FreePort returns a loopback port nothing listens on, for a process skiff
// starts to listen on. It is picked below every system's ephemeral range
// (Linux 32768–60999, macOS and Windows 49152–65535): a port the kernel
// hands out as an outgoing connection's source between the pick and the
// process's listen would make that listen fail, as a port from
// 127.0.0.1:0 (which is from that range) can under load.
func FreePort() (int, error) {
	const lo, hi = 20000, 32768
	start := lo + rand.IntN(hi-lo)
	for i := range 200 {
		port := lo + (start-lo+i*7919)%(hi-lo)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return port, l.Close()
		}
	}
	return 0, errors.New("no free loopback port between 20000 and 32767")
}
