package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// closedByPeer says whether the app closed an idle connection (or wrote
// on it unasked, which leaves it as unusable): one non-blocking peek at
// the socket, which finds nothing to read on a good one. The call is a
// raw one, as the connection's reads and writes (rawio_linux.go): it
// does not wake the runtime's sysmon.
func closedByPeer(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			// Go's sockets are non-blocking: nothing to read is EAGAIN.
			_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			// A byte (unasked), the end (0 bytes) or an error.
			closed = e != syscall.EAGAIN
			return true
		}
	})
	return closed || err != nil
}
