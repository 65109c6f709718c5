package proxy

import (
	"bufio"
	"bytes"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// smuggling are heads the front must not forward itself: each is handed
// to net/http, which refuses it (400, 417, 505) or reads it its own way.
var smuggling = map[string]string{
	"length and chunked":          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"chunked and length":          "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
	"two lengths":                 "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
	"two equal lengths":           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
	"length list":                 "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
	"signed length":               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
	"negative length":             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
	"hex length":                  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nabcd",
	"huge length":                 "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"empty length":                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
	"gzip, chunked":               "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"chunked, identity":           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	"chunked in 1.0":              "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"two encodings":               "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"obs-fold":                    "GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
	"obs-fold of a length":        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 4\r\n\r\nabcd",
	"first line folded":           "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
	"bare LF":                     "GET / HTTP/1.1\nHost: x\n\n",
	"bare LF in a header":         "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
	"bare CR":                     "GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n",
	"space before colon":          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd",
	"space in a name":             "GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n",
	"empty name":                  "GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n",
	"NUL in a value":              "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
	"DEL in a value":              "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
	"no colon":                    "GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n",
	"no host":                     "GET / HTTP/1.1\r\n\r\n",
	"two hosts":                   "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"bad host":                    "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"HTTP/1.2":                    "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
	"lower-case version":          "GET / http/1.1\r\nHost: x\r\n\r\n",
	"HTTP/2 preface":              "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"HTTP/0.9":                    "GET /\r\n\r\n",
	"two spaces":                  "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
	"space in the target":         "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	"absolute target":             "GET http://other/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"asterisk":                    "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"fragment":                    "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n",
	"bad escape":                  "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"non-ASCII target":            "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
	"bad method":                  "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT":                     "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
	"upgrade":                     "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"h2c upgrade":                 "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
	"upgrade without connection":  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
	"other expectation":           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\nhi",
	"100-continue on 1.0":         "POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
	"empty line first":            "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"empty host":                  "GET / HTTP/1.1\r\nHost: \r\n\r\n",
	"unterminated by an end line": "GET / HTTP/1.1\r\nHost: x\r\n\r",
}

// taken are heads the front reads itself.
var taken = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/b%2Fc?x=1&y=%20&z HTTP/1.1\r\nHost: app.example:8080\r\nAccept: */*\r\nX-Multi: one\r\nX-Multi: two\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-Continue\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\nx-lower: 1\r\nX-Tab:\ta\tb \t\r\nX-Empty:\r\nX-Obs-Text: caf\xc3\xa9\r\n\r\n",
	"PROPFIND /dav HTTP/1.1\r\nHost: [::1]:80\r\nPragma: no-cache\r\nConnection: close\r\n\r\n",
	"DELETE /x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nTe: trailers\r\n\r\n",
}

func readHeadOf(t testing.TB, s string) []byte {
	raw, err := readHead(bufio.NewReader(strings.NewReader(s)), nil)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return raw
}

func TestParseHeadHandsOverWhatIsOdd(t *testing.T) {
	for name, req := range smuggling {
		raw, err := readHead(bufio.NewReader(strings.NewReader(req)), nil)
		if err != nil {
			continue // never a request the front forwards
		}
		var h head
		if parseHead(raw, &h) {
			t.Errorf("%s: the front takes %q", name, req)
		}
	}
	for _, req := range taken {
		var h head
		if !parseHead(readHeadOf(t, req), &h) {
			t.Errorf("the front hands over %q", req)
		}
	}
}

func TestParseHeadReadsAsNetHTTP(t *testing.T) {
	for _, req := range taken {
		checkAsNetHTTP(t, readHeadOf(t, req))
	}
}

// TestFrontHandsSmugglingToNetHTTP sends each odd head, and a request
// that closes the connection after it, through the proxy behind
// net/http's server and behind the front: the caller gets the same
// answers (or the same silence, for a head that never ends), and the app
// sees the same.
func TestFrontHandsSmugglingToNetHTTP(t *testing.T) {
	nsAddr, frAddr, f := compareServers(t)
	for name, req := range smuggling {
		t.Run(name, func(t *testing.T) {
			before := f.handed.Load()
			req += "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			want := normal(rawExchange(t, nsAddr, req, 2*time.Second))
			got := normal(rawExchange(t, frAddr, req, 2*time.Second))
			if name == "HTTP/2 preface" {
				// Both speak HTTP/2: the same SETTINGS first; what
				// follows depends on the moment.
				got, want = firstFrame(got), firstFrame(want)
			}
			if got != want {
				t.Errorf("the front differs from net/http's server:\n--- front\n%q\n--- net/http\n%q", got, want)
			}
			if name != "unterminated by an end line" && f.handed.Load() != before+1 {
				t.Errorf("not handed to net/http")
			}
		})
	}
}

// checkAsNetHTTP fails when the front takes raw and net/http's server
// would refuse it, or read it otherwise.
func checkAsNetHTTP(t testing.TB, raw []byte) {
	var h head
	if !parseHead(raw, &h) {
		return
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("the front takes %q, which net/http refuses: %v", raw, err)
	}
	// The server's own checks (http.Server's readRequest).
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	tp.ReadLine()
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	hosts := mh["Host"]
	if req.ProtoMinor == 1 && len(hosts) == 0 || len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		t.Fatalf("the front takes %q, whose Host net/http refuses", raw)
	}
	for k, vv := range mh {
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("the front takes %q, whose header %q net/http refuses", raw, k)
			}
		}
	}
	if req.Method != h.method || req.RequestURI != h.target || req.URL.String() != h.url.String() || req.Host != h.host ||
		req.ProtoMinor != h.minor || req.ContentLength != h.length || req.Close != h.close {
		t.Fatalf("%q: net/http reads %s %s 1.%d host %q length %d close %v; the front %s %s 1.%d host %q length %d close %v", raw,
			req.Method, req.RequestURI, req.ProtoMinor, req.Host, req.ContentLength, req.Close,
			h.method, h.target, h.minor, h.host, h.length, h.close)
	}
	if !maps.EqualFunc(req.Header, h.header, slices.Equal) {
		t.Fatalf("%q: net/http reads the headers %v, the front %v", raw, req.Header, h.header)
	}
}

// FuzzParseHead compares the front's reading of a head with net/http's:
// what the front takes, net/http takes and reads the same. Its seeds run
// in the normal suite.
func FuzzParseHead(f *testing.F) {
	for _, req := range smuggling {
		f.Add([]byte(req))
	}
	for _, req := range taken {
		f.Add([]byte(req))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := readHead(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil {
			return
		}
		checkAsNetHTTP(t, raw)
	})
}

// firstFrame is the first HTTP/2 frame of b, or b.
func firstFrame(b string) string {
	if len(b) < 9 {
		return b
	}
	n := 9 + (int(b[0])<<16 | int(b[1])<<8 | int(b[2]))
	return b[:min(n, len(b))]
}
