//go:build !unix

package proxy

import "net"

// closedByPeer cannot tell without a read here: a connection the app
// closed while idle is found when a request fails on it, and a request
// that can be sent again is (see retryable).
func closedByPeer(net.Conn) bool { return false }
