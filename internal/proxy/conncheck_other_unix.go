//go:build unix && !linux

package proxy

import (
	"errors"
	"syscall"
)

// peekClosed peeks at the socket fd for one byte: true when there is one
// (unasked), the end, or an error.
func peekClosed(fd uintptr) bool {
	var b [1]byte
	// Go's sockets are non-blocking: nothing to read is EAGAIN.
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	return n > 0 || (err == nil && n == 0) ||
		(err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR))
}
