//go:build !linux

package proxy

import "net"

// withRawIO returns conn: raw system calls are Linux's here
// (rawio_linux.go).
func withRawIO(conn net.Conn) net.Conn { return conn }
