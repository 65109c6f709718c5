package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// The proxy's sockets are read and written with raw system calls.
//
// Go's own read and write tell the runtime they enter a system call that
// may block, and when every P was idle, that wakes the runtime's monitor
// thread (sysmon) from its long sleep: it then polls every 20 µs until the
// process is idle again. A proxy goes idle twice per request (waiting for
// the caller, then for the app), so each request woke sysmon twice, and
// its wake-ups and short sleeps were a fifth of the relay's CPU at 500
// requests a second (docs/benchmarks.md). The sockets are non-blocking
// (the network poller's), so their calls never block: a raw call that
// finds nothing to read or no room to write returns EAGAIN, and the
// goroutine waits for the poller as before (syscall.RawConn's Read and
// Write), deadlines and Close included. Errors are net.Conn's own.

// rawConn is a TCP connection read and written with raw system calls.
type rawConn struct {
	net.Conn
	tcp *net.TCPConn
	sc  syscall.RawConn

	// One read and one write at a time, as the poller's own locks have
	// them: these hold their state between the call and its callback.
	rmu, wmu sync.Mutex
	rd, wr   rawOp
}

// rawOp is the state of a read or a write between rawConn's call and the
// callback that syscall.RawConn runs (bound once, not a closure per call).
type rawOp struct {
	do  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// withRawIO returns conn read and written with raw system calls when it
// is a TCP connection, and conn otherwise.
func withRawIO(conn net.Conn) net.Conn {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	sc, err := tcp.SyscallConn()
	if err != nil {
		return conn
	}
	c := &rawConn{Conn: conn, tcp: tcp, sc: sc}
	c.rd.do, c.wr.do = c.rd.read, c.wr.write
	return c
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // as net.Conn: no call
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rd.p, c.rd.n, c.rd.err = p, 0, nil
	err := c.sc.Read(c.rd.do)
	n, serr := c.rd.n, c.rd.err
	c.rd.p = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case serr != nil:
		return 0, c.opError("read", os.NewSyscallError("read", serr))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wr.p, c.wr.n, c.wr.err = p, 0, nil
	err := c.sc.Write(c.wr.do)
	n, serr := c.wr.n, c.wr.err
	c.wr.p = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case serr == io.ErrUnexpectedEOF:
		return n, c.opError("write", serr)
	case serr != nil:
		return n, c.opError("write", os.NewSyscallError("write", serr))
	}
	return n, nil
}

// opError is err as net.Conn's Read and Write return it: syscall.RawConn
// names the operation raw-read or raw-write and leaves out the local
// address.
func (c *rawConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// read is one raw read(2) into o.p: false (wait for the poller) when
// there is nothing to read.
func (o *rawOp) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
			o.n = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		o.err = e
		return true
	}
}

// write writes all of o.p with raw write(2)s: false (wait for the
// poller) when the socket's buffer is full.
func (o *rawOp) write(fd uintptr) bool {
	for len(o.p) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			o.err = e
			return true
		}
		if n == 0 {
			o.err = io.ErrUnexpectedEOF // as internal/poll
			return true
		}
		o.n += int(n)
		o.p = o.p[n:]
	}
	return true
}

// CloseWrite shuts the connection's write side down, as *net.TCPConn's.
func (c *rawConn) CloseWrite() error { return c.tcp.CloseWrite() }

// SyscallConn is the connection's, for closedByPeer.
func (c *rawConn) SyscallConn() (syscall.RawConn, error) { return c.sc, nil }
