package proxy

import (
	"bufio"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The front's reading of a request's head (front.go). It takes only the
// plain case: a request line of an origin-form target and HTTP/1.0 or
// 1.1, CRLF line ends, valid header names and values, one Host (on 1.1),
// at most one Content-Length and no Transfer-Encoding, no upgrade. Any
// other head, well-formed or not, is not judged here: it goes to the
// net/http server as it came, which answers it as it did before the
// front (a 400, an upgrade, h2c). So the front never forwards a request
// that net/http would have read differently (request smuggling: two
// lengths, a length and chunks, obs-folded or bare-LF lines).

// maxHead is the most a request's line and headers may take: the
// http.Server's limit (http.DefaultMaxHeaderBytes, with the 4096 bytes
// of slack it allows). A larger head is answered 431, as there.
const maxHead = http.DefaultMaxHeaderBytes + 4096

// errHeadTooLarge is a head longer than maxHead.
var errHeadTooLarge = errors.New("the request's head is larger than " + strconv.Itoa(maxHead) + " bytes")

// readHead reads a request's head, up to and with the empty line that
// ends it, into buf (which it returns, grown): the bytes as they came,
// to be parsed, or handed to net/http.
func readHead(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > maxHead {
			return buf, errHeadTooLarge
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue // a line longer than the reader's buffer
		case err != nil:
			return buf, err
		}
		// The first line ends the head only when it is empty (which
		// is no request: net/http answers it).
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return buf, nil
		}
	}
}

// head is what the front takes of a request's head.
type head struct {
	method string
	target string // as it came: /path?query
	url    *url.URL
	minor  int // HTTP/1.<minor>: 0 or 1
	header http.Header
	host   string
	// length is the body's Content-Length; 0 without one.
	length int64
	// expect says the caller waits for 100 Continue before its body.
	expect bool
	// close says the caller wants the connection closed after the
	// answer; keepAlive10 is an HTTP/1.0 caller that asked to keep it.
	close, keepAlive10 bool
}

// parseHead parses raw (from readHead) into h, and says whether the front
// takes the request: false hands it to net/http. The target, the names
// and the values are cut from one copy of raw, and the values share one
// backing array (as textproto reads them): a few allocations per request
// rather than three per header.
func parseHead(raw []byte, h *head) bool {
	s := string(raw)
	line, rest, ok := cutLine(s)
	if !ok {
		return false
	}
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !validMethod(method) || !validTarget(target) {
		return false
	}
	switch proto {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		return false // HTTP/2's preface, 0.9, anything else
	}
	h.method, h.target = internMethod(method), target
	if h.method == http.MethodConnect {
		return false
	}
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return false
	}
	h.url = u

	if h.header == nil {
		h.header = make(http.Header, 8)
	}
	rest, ended, ok := parseHeader(rest, h.header)
	if !ok || !ended || len(rest) != 0 {
		return false
	}
	for _, key := range [...]string{"Transfer-Encoding", "Upgrade"} {
		if _, ok := h.header[key]; ok {
			return false // chunked bodies, upgrades (WebSocket, h2c)
		}
	}
	hosts, lengths := len(h.header["Host"]), len(h.header["Content-Length"])
	if hosts > 1 || lengths > 1 || (hosts == 0 && h.minor == 1) {
		return false
	}
	if hosts == 1 {
		h.host = h.header["Host"][0]
		delete(h.header, "Host")
		if h.host == "" || !httpguts.ValidHostHeader(h.host) {
			return false
		}
	}
	if lengths == 1 {
		n, ok := parseLength(h.header["Content-Length"][0])
		if !ok {
			return false
		}
		h.length = n
	}
	conn := h.header["Connection"]
	if hasToken(conn, "upgrade") {
		return false
	}
	if ex, ok := h.header["Expect"]; ok {
		// 100-continue on 1.1 is answered as net/http does; any other
		// expectation (417 there) is net/http's to answer.
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") || h.minor != 1 {
			return false
		}
		h.expect = h.length > 0
	}
	if h.minor == 1 {
		h.close = hasToken(conn, "close")
	} else {
		h.keepAlive10 = hasToken(conn, "keep-alive")
		h.close = !h.keepAlive10
	}
	pragmaNoCache(h.header)
	return true
}

// parseHeader parses the CRLF-ended header lines at the start of s into
// h, up to an empty line (ended) or the end of s, and returns what
// follows. The values share one backing array, as textproto reads them.
// ok is false for a line net/http might read otherwise, which is then
// not judged here: one that begins with a space or tab (it continues the
// one before: obs-fold), a name with a space before the colon or
// otherwise invalid, an invalid value, a bare CR or LF.
func parseHeader(s string, h http.Header) (rest string, ended, ok bool) {
	strs := make([]string, strings.Count(s, "\n"))
	for s != "" {
		var line string
		if line, s, ok = cutLine(s); !ok {
			return "", false, false
		}
		if line == "" {
			return s, true, true
		}
		name, value, found := strings.Cut(line, ":")
		value = strings.Trim(value, " \t")
		if !found || !validName(name) || !validValue(value) {
			return "", false, false
		}
		key := http.CanonicalHeaderKey(name)
		if vv, seen := h[key]; seen || len(strs) == 0 {
			h[key] = append(vv, value)
			continue
		}
		vv := strs[:1:1]
		strs = strs[1:]
		vv[0] = value
		h[key] = vv
	}
	return "", false, true
}

// pragmaNoCache adds Cache-Control: no-cache to a header with Pragma:
// no-cache and no Cache-Control, as net/http's readers of requests and
// answers do.
func pragmaNoCache(h http.Header) {
	if pr, ok := h["Pragma"]; ok && pr[0] == "no-cache" {
		if _, cc := h["Cache-Control"]; !cc {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// cutLine cuts the first CRLF-ended line off s. A line with a bare CR or
// LF is no line.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	line = s[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, s[i+1:], true
}

// validMethod says m is a token (RFC 9110 5.6.2).
func validMethod[T string | []byte](m T) bool {
	if len(m) == 0 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// validName says a header's name is a token.
func validName[T string | []byte](n T) bool {
	return validMethod(n)
}

// validValue says a header's value holds no control byte but a tab.
func validValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget says t is an origin-form target (a path and a query) of
// visible ASCII without a fragment. An asterisk (OPTIONS *), an absolute
// URL (a proxy's request) or anything else goes to net/http.
func validTarget(t string) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length: digits only, as net/http takes it
// (no sign, no spaces within).
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// internMethod returns the common methods as constants, which do not keep
// the head they were cut from.
func internMethod(m string) string {
	for _, s := range [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodHead,
		http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		if m == s {
			return s
		}
	}
	return m
}
