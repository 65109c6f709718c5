package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// The lean path's reading of the app's answer. http.ReadResponse costs a
// tenth of the proxy's CPU per request (docs/benchmarks.md): a
// textproto.Reader, a string per line and per value, a header map, the
// Response and its body, each allocated anew. readResponse reads the
// plain case itself into what its connection keeps from one answer to
// the next, and hands anything else to http.ReadResponse with nothing
// consumed, so that every answer is read as net/http reads it
// (FuzzParseResponse compares the two).

// readResponse reads the head of the app's answer to r from c.
func (c *appConn) readResponse(r *http.Request) (*http.Response, error) {
	if res := c.parseResponse(r); res != nil {
		return res, nil
	}
	return http.ReadResponse(c.br, r)
}

// crlf2 ends a head.
var crlf2 = []byte("\r\n\r\n")

// parseResponse reads the head of an answer when it is all in c's
// buffer and plain: HTTP/1.1, a status of three digits from 100 up, lines
// ended by CRLF, valid names and values without obs-fold, no
// Transfer-Encoding, and a body of a length known ahead (one valid
// Content-Length, or none where the status or a HEAD allows no body).
// Otherwise it consumes nothing and returns nil. The Response, its header
// map and its body are c's, valid until c's next answer.
func (c *appConn) parseResponse(r *http.Request) *http.Response {
	buf, _ := c.br.Peek(c.br.Buffered())
	end := bytes.Index(buf, crlf2)
	if end < 0 {
		return nil // not all here yet: net/http's reader waits for it
	}
	s := string(buf[:end+2]) // every line with its CRLF; keys and values are cut from it
	status, rest, ok := cutLine(s)
	if !ok || len(status) < 12 || status[:9] != "HTTP/1.1 " || (len(status) > 12 && status[12] != ' ') {
		return nil
	}
	code := 0
	for i := 9; i < 12; i++ {
		if status[i] < '0' || status[i] > '9' {
			return nil
		}
		code = code*10 + int(status[i]-'0')
	}
	if code < 100 {
		return nil
	}

	h := c.resHeader
	if h == nil {
		h = make(http.Header, 8)
		c.resHeader = h
	}
	clear(h)
	// s holds the head without its empty line: no line of it is empty.
	if _, ended, ok := parseHeader(rest, h); !ok || ended {
		return nil
	}
	pragmaNoCache(h)
	if _, te := h["Transfer-Encoding"]; te {
		return nil
	}
	length := int64(-1)
	if cl, ok := h["Content-Length"]; ok {
		if len(cl) != 1 || cl[0] == "" {
			return nil
		}
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return nil
		}
		length = int64(n)
	}
	closing := false
	if conn, ok := h["Connection"]; ok && httpguts.HeaderValuesContainsToken(conn, "close") {
		closing = true
		delete(h, "Connection") // as net/http's shouldClose does
	}
	head := r.Method == http.MethodHead
	bodyLength := length
	switch {
	case head || !bodyAllowed(code):
		bodyLength = 0
	case length < 0:
		return nil // a body that ends with the connection
	}
	if !head {
		length = bodyLength
	}

	res := &c.res
	*res = http.Response{Status: status[9:], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, ContentLength: length, Close: closing, Request: r}
	if bodyLength > 0 {
		c.body = lenBody{br: c.br, remaining: bodyLength}
		res.Body = &c.body
	}
	c.br.Discard(end + 4)
	return res
}

// lenBody is an answer's body of a known length, read from its
// connection's buffer as net/http reads one: its last bytes come with
// io.EOF, and an app that closes before the end is io.ErrUnexpectedEOF.
type lenBody struct {
	br        *bufio.Reader
	remaining int64
}

func (b *lenBody) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lenBody) Close() error { return nil }
