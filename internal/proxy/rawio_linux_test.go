package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// tcpPair returns the two ends of a loopback TCP connection: the dialled
// one read and written with raw system calls, and the accepted one.
func tcpPair(t *testing.T) (*rawConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("no connection accepted")
	}
	rc, ok := withRawIO(conn).(*rawConn)
	if !ok {
		t.Fatal("a TCP connection is not read with raw system calls")
	}
	t.Cleanup(func() { conn.Close(); peer.Close() })
	return rc, peer.(*net.TCPConn)
}

func TestRawConnReadsAndWrites(t *testing.T) {
	rc, peer := tcpPair(t)
	if n, err := rc.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "hello" {
		t.Fatalf("the peer read %q, %v", b, err)
	}
	peer.Write([]byte("world"))
	peer.Close()
	got, err := io.ReadAll(rc)
	if string(got) != "world" || err != nil {
		t.Fatalf("ReadAll: %q, %v", got, err)
	}
	if n, err := rc.Read(b); n != 0 || err != io.EOF {
		t.Errorf("a read after the end: %d, %v; want io.EOF itself", n, err)
	}
}

// TestRawConnWaitsForThePoller: a write larger than the socket's buffers
// waits for the peer to read (EAGAIN, then the poller), and a read waits
// for bytes to come, both at once on one connection.
func TestRawConnWaitsForThePoller(t *testing.T) {
	rc, peer := tcpPair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	echoed := make(chan error, 1)
	go func() {
		_, err := io.Copy(peer, io.LimitReader(peer, int64(len(big))))
		echoed <- err
	}()
	wrote := make(chan error, 1)
	go func() {
		n, err := rc.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		wrote <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(rc, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, equal %v: %v", len(got), bytes.Equal(got, big), err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
}

// TestRawConnErrorsAsNetConn: a deadline, a closed connection and a
// peer that reset it give the errors net.Conn gives.
func TestRawConnErrorsAsNetConn(t *testing.T) {
	rc, peer := tcpPair(t)
	b := make([]byte, 1)

	rc.SetReadDeadline(time.Now().Add(-time.Second))
	_, want := rc.tcp.Read(b)
	_, got := rc.Read(b)
	var ne net.Error
	if got == nil || got.Error() != want.Error() || !errors.As(got, &ne) || !ne.Timeout() || !errors.Is(got, os.ErrDeadlineExceeded) {
		t.Errorf("past a deadline: %v; net.Conn's: %v", got, want)
	}
	rc.SetWriteDeadline(time.Now().Add(-time.Second))
	_, want = rc.tcp.Write(b)
	_, got = rc.Write(b)
	if got == nil || got.Error() != want.Error() || !errors.Is(got, os.ErrDeadlineExceeded) {
		t.Errorf("past a write deadline: %v; net.Conn's: %v", got, want)
	}
	rc.SetDeadline(time.Time{})

	// The peer resets the connection: it closes with bytes unread.
	rc.Write([]byte("unread"))
	peer.SetLinger(0)
	peer.Close()
	var err error
	for range 100 { // the reset reaches the socket at once on loopback; a few writes at most
		if _, err = rc.Write([]byte("x")); err != nil {
			break
		}
	}
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != "write" || oe.Net != "tcp" || oe.Source.String() != rc.LocalAddr().String() ||
		oe.Addr.String() != rc.RemoteAddr().String() || !errors.As(err, &se) || se.Syscall != "write" ||
		!(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Errorf("writing to a reset connection: %#v", err)
	}

	rc.Close()
	_, want = rc.tcp.Read(b)
	_, got = rc.Read(b)
	if got == nil || got.Error() != want.Error() || !errors.Is(got, net.ErrClosed) {
		t.Errorf("reading a closed connection: %v; net.Conn's: %v", got, want)
	}
	_, got = rc.Write(b)
	if !errors.Is(got, net.ErrClosed) {
		t.Errorf("writing a closed connection: %v", got)
	}
}

// TestClosedByPeer: a kept connection the app closed, or wrote on unasked,
// is not used again; a good one is.
func TestClosedByPeer(t *testing.T) {
	rc, peer := tcpPair(t)
	if closedByPeer(rc) {
		t.Error("a good connection is taken for closed")
	}
	peer.Write([]byte("x"))
	awaitReadable(t, rc)
	if !closedByPeer(rc) {
		t.Error("a connection with bytes nobody asked for is taken for good")
	}
	rc2, peer2 := tcpPair(t)
	peer2.Close()
	awaitReadable(t, rc2)
	if !closedByPeer(rc2) {
		t.Error("a connection the peer closed is taken for good")
	}
}

// awaitReadable waits, with the network poller, until c has a byte or
// its end to read, and reads nothing.
func awaitReadable(t *testing.T, c *rawConn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	err := c.sc.Read(func(fd uintptr) bool {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK, 0, 0)
		return e != syscall.EAGAIN
	})
	if err != nil {
		t.Fatal(err)
	}
}
