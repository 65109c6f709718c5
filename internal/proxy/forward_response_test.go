package proxy

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// leanResponses are answers the lean parser reads itself (to a GET unless
// the name says HEAD).
var leanResponses = map[string]string{
	"plain":               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 22:00:00 GMT\r\nContent-Length: 27\r\n\r\n{\"message\":\"Hello, World!\"}",
	"no reason":           "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"odd reason":          "HTTP/1.1 599 Is it  \x01 a teapot\r\nContent-Length: 0\r\n\r\n",
	"no length, 204":      "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"304 with a length":   "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n",
	"interim":             "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"switching":           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"close":               "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx",
	"keep-alive":          "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx",
	"lower-case names":    "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-request-id: abc\r\nSET-COOKIE: a=1\r\nset-cookie: b=2\r\n\r\nabcNEXT",
	"spaces and tabs":     "HTTP/1.1 200 OK\r\nX-A:\t a b \t\r\nX-Empty:\r\nX-Obs-Text: caf\xc3\xa9\r\nContent-Length:  4 \r\n\r\nbody",
	"pragma":              "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"pragma and cache":    "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nContent-Length: 0\r\n\r\n",
	"trailer, no chunks":  "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\nok",
	"short body":          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	"HEAD":                "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
	"HEAD without length": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
	"no headers, 204":     "HTTP/1.1 204 No Content\r\n\r\n",
}

// netHTTPResponses are answers the lean parser leaves to net/http.
var netHTTPResponses = map[string]string{
	"HTTP/1.0":            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"chunked":             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"length and chunked":  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"until close":         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
	"two lengths":         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"bad length":          "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
	"empty length":        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok",
	"obs-fold":            "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
	"bare LF":             "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"bare LF in a header": "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n",
	"bare CR":             "HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 0\r\n\r\n",
	"space in a name":     "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n",
	"space before colon":  "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
	"NUL in a value":      "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
	"no colon":            "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n",
	"two spaces":          "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
	"two-digit status":    "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
	"status below 100":    "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
	"signed status":       "HTTP/1.1 +20 OK\r\nContent-Length: 0\r\n\r\n",
	"tab after status":    "HTTP/1.1 200\tOK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2":              "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"not all here":        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
	"nothing":             "",
}

func TestParseResponseTakesWhatIsPlain(t *testing.T) {
	for name, raw := range leanResponses {
		if res := parseResponseOf(t, raw, name); res == nil {
			t.Errorf("%s: left to net/http", name)
		}
	}
	for name, raw := range netHTTPResponses {
		if res := parseResponseOf(t, raw, name); res != nil {
			t.Errorf("%s: read by the lean parser", name)
		}
	}
}

func parseResponseOf(t *testing.T, raw, name string) *http.Response {
	t.Helper()
	c := &appConn{br: bufio.NewReader(strings.NewReader(raw))}
	c.br.Peek(1)
	before := c.br.Buffered()
	req := &http.Request{Method: "GET"}
	if strings.HasPrefix(name, "HEAD") {
		req.Method = "HEAD"
	}
	res := c.parseResponse(req)
	if res == nil && c.br.Buffered() != before {
		t.Errorf("%s: left to net/http with %d bytes consumed", name, before-c.br.Buffered())
	}
	return res
}

func TestParseResponseReadsAsNetHTTP(t *testing.T) {
	for name, raw := range leanResponses {
		method := "GET"
		if strings.HasPrefix(name, "HEAD") {
			method = "HEAD"
		}
		t.Run(name, func(t *testing.T) { checkResponseAsNetHTTP(t, []byte(raw), method) })
	}
}

// TestParseResponseReusesItsConnection: an answer's Response, header map
// and body are its connection's, overwritten by the next answer, whose
// headers are its own.
func TestParseResponseReusesItsConnection(t *testing.T) {
	c := &appConn{br: bufio.NewReader(strings.NewReader(
		"HTTP/1.1 200 OK\r\nX-First: 1\r\nContent-Length: 3\r\n\r\none" +
			"HTTP/1.1 404 Not Found\r\nX-Second: 2\r\nContent-Length: 3\r\n\r\ntwo"))}
	req := &http.Request{Method: "GET"}
	var kept []string
	for _, want := range []string{"one", "two"} {
		res, err := c.readResponse(req)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, res.Header.Get("X-First")+res.Header.Get("X-Second"))
		b, err := io.ReadAll(res.Body)
		if err != nil || string(b) != want {
			t.Fatalf("body %q, %v; want %q", b, err, want)
		}
	}
	if !slices.Equal(kept, []string{"1", "2"}) {
		t.Errorf("the answers' headers: %q", kept)
	}
}

// checkResponseAsNetHTTP fails when the lean parser reads raw, the answer
// to a request of method, otherwise than http.ReadResponse: its head, its
// body and where the next answer begins.
func checkResponseAsNetHTTP(t testing.TB, raw []byte, method string) {
	req := &http.Request{Method: method}
	c := &appConn{br: bufio.NewReader(bytes.NewReader(raw))}
	c.br.Peek(1)
	got := c.parseResponse(req)
	if got == nil {
		return
	}
	nbr := bufio.NewReader(bytes.NewReader(raw))
	want, err := http.ReadResponse(nbr, req)
	if err != nil {
		t.Fatalf("the lean parser reads %q, which net/http refuses: %v", raw, err)
	}
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.ContentLength != want.ContentLength ||
		got.Close != want.Close || got.Uncompressed != want.Uncompressed || got.Request != want.Request ||
		!slices.Equal(got.TransferEncoding, want.TransferEncoding) || (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Fatalf("%q: net/http reads %q %d %s %d.%d length %d close %v encoding %v; the lean parser %q %d %s %d.%d length %d close %v encoding %v", raw,
			want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor, want.ContentLength, want.Close, want.TransferEncoding,
			got.Status, got.StatusCode, got.Proto, got.ProtoMajor, got.ProtoMinor, got.ContentLength, got.Close, got.TransferEncoding)
	}
	if !maps.EqualFunc(got.Header, want.Header, slices.Equal) || !maps.EqualFunc(got.Trailer, want.Trailer, slices.Equal) {
		t.Fatalf("%q: net/http reads the headers %v and trailers %v, the lean parser %v and %v", raw, want.Header, want.Trailer, got.Header, got.Trailer)
	}
	gb, gerr := io.ReadAll(got.Body)
	wb, werr := io.ReadAll(want.Body)
	if !bytes.Equal(gb, wb) || gerr != werr {
		t.Fatalf("%q: net/http reads the body %q, %v; the lean parser %q, %v", raw, wb, werr, gb, gerr)
	}
	gr, _ := io.ReadAll(c.br)
	wr, _ := io.ReadAll(nbr)
	if !bytes.Equal(gr, wr) {
		t.Fatalf("%q: after the answer, net/http reads %q, the lean parser %q", raw, wr, gr)
	}
}

// FuzzParseResponse compares the lean parser's reading of an answer with
// net/http's: what the lean parser takes, net/http takes and reads the
// same. Its seeds run in the normal suite.
func FuzzParseResponse(f *testing.F) {
	for _, raw := range leanResponses {
		f.Add([]byte(raw), false)
	}
	for _, raw := range netHTTPResponses {
		f.Add([]byte(raw), false)
	}
	f.Add([]byte(leanResponses["HEAD"]), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		checkResponseAsNetHTTP(t, raw, method)
	})
}
