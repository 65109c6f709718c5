package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// frontWriter is the front's http.ResponseWriter: the answer's head goes
// out as net/http's server writes it (a Date, a sniffed Content-Type, the
// framing: Content-Length, chunks on 1.1, the connection's end on 1.0;
// Connection: close or keep-alive), when the body's first bytes are
// written, at a flush or at the end. Written for the proxy's handler,
// which writes the app's headers, then its body, then its trailers.
type frontWriter struct {
	c      *frontConn
	h      *head
	body   *frontBody      // nil without one
	ctx    context.Context // the request's
	header http.Header

	status    int   // the final status, once WriteHeader was called
	committed bool  // the head went to the connection's buffer
	length    int64 // the declared Content-Length, or -1
	written   int64
	chunked   bool
	noBody    bool // HEAD, 1xx, 204, 304: what is written is dropped
	trailers  []string
	// closeAfter says the connection ends with this answer.
	closeAfter bool
	scratch    [64]byte
	dateBuf    [32]byte
}

func (w *frontWriter) reset(h *head, body *frontBody, ctx context.Context) {
	clear(w.header)
	*w = frontWriter{c: w.c, h: h, body: body, ctx: ctx, header: w.header, length: -1, trailers: w.trailers[:0]}
	w.closeAfter = h.close
}

// watchCaller has a aborted when the caller of the request of ctx goes
// away, as context.AfterFunc(ctx, a.abort) would, and says whether it
// will be: false when ctx is not that request's context (a handler
// replaced it), or the caller already went away.
func (w *frontWriter) watchCaller(ctx context.Context, a aborter) bool {
	return ctx == w.ctx && w.c.watch.onGone(a)
}

// unwatchCaller ends watchCaller, and says whether it stopped the abort
// from running (as the stop function of context.AfterFunc).
func (w *frontWriter) unwatchCaller() bool {
	return w.c.watch.offGone()
}

func (w *frontWriter) Header() http.Header { return w.header }

// EnableFullDuplex is a no-op: the front reads a request's body and
// writes its answer independently (http.ResponseController calls it).
func (w *frontWriter) EnableFullDuplex() error { return nil }

func (w *frontWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.interim(code)
		return
	}
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// interim writes a 1xx answer at once, as net/http's server does.
func (w *frontWriter) interim(code int) {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w.statusLine(code)
	w.header.WriteSubset(c.bw, noBodyHeaders)
	c.bw.WriteString("\r\n")
	c.bw.Flush()
}

var noBodyHeaders = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

func (w *frontWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.committed {
		w.commit(p, false)
	}
	w.written += int64(len(p))
	if w.length != -1 && w.written > w.length {
		return 0, http.ErrContentLength
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.Write(strconv.AppendInt(w.scratch[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return bw.Write(p)
}

// Flush sends what was written so far.
func (w *frontWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(nil, false)
	}
	w.c.bw.Flush()
}

// finish ends the answer: its head when nothing was written, the last
// chunk and the trailers. It says whether the connection can take
// another request.
func (w *frontWriter) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(nil, true)
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		w.finalTrailers().Write(bw)
		bw.WriteString("\r\n")
	}
	if !w.noBody && w.length != -1 && w.written != w.length {
		w.closeAfter = true // the caller cannot tell where the next answer begins
	}
	return !w.closeAfter
}

// finalTrailers are the trailers declared in the head and those set
// with http.TrailerPrefix.
func (w *frontWriter) finalTrailers() http.Header {
	t := http.Header{}
	for k, vv := range w.header {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return t
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

// commit writes the answer's head to the connection's buffer. p is the
// body's first bytes (for a Content-Type), done says the handler
// returned without writing any.
func (w *frontWriter) commit(p []byte, done bool) {
	c := w.c
	waiting := w.body != nil && w.body.waiting()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w.committed = true
	h, status := w.header, w.status
	head := w.h

	var date, length []byte
	var contentType, connection, encoding string
	hasTrailers := false
	var exclude map[string]bool // trailers set ahead, kept for finalTrailers
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			hasTrailers = true
			if exclude == nil {
				exclude = map[string]bool{}
			}
			exclude[k] = true
		}
	}
	for _, v := range h["Trailer"] {
		hasTrailers = true
		for k := range strings.SplitSeq(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if k != "" && httpguts.ValidTrailerHeader(k) {
				w.trailers = append(w.trailers, k)
			}
		}
	}
	te := h.Get("Transfer-Encoding")
	isHEAD := head.method == http.MethodHead
	if done && !hasTrailers && te == "" && bodyAllowed(status) && w.length == -1 && !isHEAD {
		w.length = 0
		length = []byte("0")
	}
	if head.keepAlive10 && (isHEAD || w.length != -1 || !bodyAllowed(status)) {
		if _, set := h["Connection"]; !set {
			connection = "keep-alive"
		}
	} else if head.minor == 0 || head.close {
		w.closeAfter = true
	}
	if h.Get("Connection") == "close" || c.f.shuttingDown() {
		w.closeAfter = true
	}
	if waiting {
		w.closeAfter = true
	}
	if bodyAllowed(status) {
		_, haveType := h["Content-Type"]
		if !haveType && h.Get("Content-Encoding") == "" && te == "" && len(p) > 0 {
			contentType = http.DetectContentType(p)
		}
	} else {
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		if status == http.StatusNotModified {
			h.Del("Content-Type")
		}
	}
	if _, ok := h["Date"]; !ok {
		date = time.Now().UTC().AppendFormat(w.dateBuf[:0], http.TimeFormat)
	}
	switch {
	case isHEAD || !bodyAllowed(status):
		w.noBody = true
		h.Del("Transfer-Encoding")
	case w.length != -1:
		h.Del("Transfer-Encoding")
	case head.minor == 1:
		w.chunked = true
		encoding = "chunked"
		h.Del("Transfer-Encoding")
		h.Del("Content-Length")
	default:
		w.closeAfter = true // 1.0: the answer ends with the connection
		h.Del("Transfer-Encoding")
	}
	if w.closeAfter && !hasToken(h["Connection"], "close") {
		h.Del("Connection")
		if head.minor == 1 {
			connection = "close"
		}
	}

	bw := c.bw
	w.statusLine(status)
	h.WriteSubset(bw, exclude)
	if date != nil {
		bw.WriteString("Date: ")
		bw.Write(date)
		bw.WriteString("\r\n")
	}
	if length != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(length)
		bw.WriteString("\r\n")
	}
	for _, kv := range [...][2]string{{"Content-Type", contentType}, {"Connection", connection}, {"Transfer-Encoding", encoding}} {
		if kv[1] != "" {
			bw.WriteString(kv[0])
			bw.WriteString(": ")
			bw.WriteString(kv[1])
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// statusLine writes the status line of code, in the request's version.
func (w *frontWriter) statusLine(code int) {
	bw := w.c.bw
	if w.h.minor == 1 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	text := http.StatusText(code)
	if text == "" {
		fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
		return
	}
	bw.Write(strconv.AppendInt(w.scratch[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(text)
	bw.WriteString("\r\n")
}
