package proxy

import (
	"syscall"
	"unsafe"
)

// peekClosed peeks at the socket fd for one byte: true when there is one
// (unasked), the end, or an error. The call is a raw one, as the
// connection's reads and writes (rawio_linux.go): it does not wake the
// runtime's sysmon.
func peekClosed(fd uintptr) bool {
	var b [1]byte
	for {
		// Go's sockets are non-blocking: nothing to read is EAGAIN.
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		return e != syscall.EAGAIN
	}
}
