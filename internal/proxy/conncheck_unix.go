//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// closedByPeer says whether the app closed an idle connection (or wrote
// on it unasked, which leaves it as unusable): one non-blocking peek at
// the socket (peekClosed), which finds nothing to read on a good one.
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
		closed = peekClosed(fd)
		return true
	})
	return closed || err != nil
}
