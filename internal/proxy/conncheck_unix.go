//go:build unix && !linux

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// closedByPeer says whether the app closed an idle connection (or wrote
// on it unasked, which leaves it as unusable): one non-blocking peek at
// the socket, which finds nothing to read on a good one.
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
		// Go's sockets are non-blocking: nothing to read is EAGAIN.
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		closed = n > 0 || (err == nil && n == 0) ||
			(err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR))
		return true
	})
	return closed || err != nil
}
