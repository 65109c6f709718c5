package relay

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Traceparent is a W3C trace context (https://www.w3.org/TR/trace-context/):
// the trace a request belongs to, the span that made it, and its flags.
// Its text form is the traceparent header: 00-<trace id>-<parent id>-<flags>.
type Traceparent struct {
	TraceID  [16]byte
	ParentID [8]byte
	Flags    byte
}

// Sampled is the flag that says the caller may have recorded its span.
const Sampled byte = 0x01

// NewTraceparent starts a trace: a random trace id and parent id, sampled.
func NewTraceparent() Traceparent {
	var t Traceparent
	rand.Read(t.TraceID[:])
	rand.Read(t.ParentID[:])
	t.Flags = Sampled
	return t
}

// ParseTraceparent reads a traceparent header. A version above 00 is read
// as 00 (its first four fields), as the specification asks; anything else
// that is not exactly the 00 form, or has an all-zero id, is invalid.
func ParseTraceparent(s string) (Traceparent, bool) {
	var t Traceparent
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return t, false
	}
	var version, flags [1]byte
	if !lowerHex(version[:], s[0:2]) || version[0] == 0xff {
		return t, false
	}
	if version[0] == 0 && len(s) != 55 || version[0] != 0 && len(s) > 55 && s[55] != '-' {
		return t, false
	}
	if !lowerHex(t.TraceID[:], s[3:35]) || !lowerHex(t.ParentID[:], s[36:52]) || !lowerHex(flags[:], s[53:55]) ||
		allZero(t.TraceID[:]) || allZero(t.ParentID[:]) {
		return Traceparent{}, false
	}
	t.Flags = flags[0]
	if version[0] != 0 {
		t.Flags &= Sampled // the other bits mean something in that version only
	}
	return t, true
}

// String is t as a traceparent header value (version 00).
func (t Traceparent) String() string {
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, t.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, t.ParentID[:])
	b = append(b, '-')
	return string(hex.AppendEncode(b, []byte{t.Flags}))
}

// TraceIDString is the trace id as 32 lower-case hex digits: what log
// lines carry as trace_id and `skiff logs --trace` looks for.
func (t Traceparent) TraceIDString() string { return hex.EncodeToString(t.TraceID[:]) }

// Child is a traceparent of the same trace with a new parent id: what a
// hop that records a span of its own sends on.
func (t Traceparent) Child() Traceparent {
	rand.Read(t.ParentID[:])
	return t
}

// EnsureTrace continues the trace of a request whose header h carries a
// valid traceparent, or starts one: it sets a fresh traceparent on h and
// drops a tracestate that belonged to an invalid one. It returns the
// trace context and whether it was started here. The per-pod proxy calls
// it on every request it forwards.
func EnsureTrace(h http.Header) (Traceparent, bool) {
	if t, ok := ParseTraceparent(h.Get("traceparent")); ok {
		return t, false
	}
	t := NewTraceparent()
	h.Set("traceparent", t.String())
	h.Del("tracestate")
	return t, true
}

// Trace is ev's trace context, from its distributed-tracing extension
// attribute traceparent.
func (e *Event) Trace() (Traceparent, bool) { return ParseTraceparent(e.Attrs["traceparent"]) }

// TraceID is the trace id of ev as a log line writes it, or "" when ev
// has no valid traceparent.
func (e *Event) TraceID() string {
	if t, ok := e.Trace(); ok {
		return t.TraceIDString()
	}
	return ""
}

// Sampled reports whether ev's trace is sampled: its hops log a line for
// it (see TracesPerSecond).
func (e *Event) Sampled() bool {
	t, ok := e.Trace()
	return ok && t.Flags&Sampled != 0
}

// carryTrace gives ev the distributed-tracing extension: the event's own
// traceparent (and tracestate) attribute when it has a valid one, else the
// traceparent header h of the HTTP message that carried it, else from's
// (the event it answers; nil for none), else a new trace, sampled when
// sample says so (nil: always). A trace that came keeps its sampled flag.
//
// In binary mode a ce-traceparent header is the attribute; the plain
// traceparent header is the HTTP hop's and wins over it, as the CloudEvents
// HTTP binding of the extension says.
func (e *Event) carryTrace(h http.Header, binary bool, from *Event, sample func() bool) {
	hdr, hdrOK := ParseTraceparent(h.Get("traceparent"))
	if _, ok := e.Trace(); ok && !(binary && hdrOK) {
		return
	}
	switch {
	case hdrOK:
		e.setTrace(hdr.String(), h.Get("tracestate"))
	case from != nil && from.TraceID() != "":
		e.setTrace(from.Attrs["traceparent"], from.Attrs["tracestate"])
	default:
		t := NewTraceparent()
		if sample != nil && !sample() {
			t.Flags &^= Sampled
		}
		e.setTrace(t.String(), "")
	}
}

func (e *Event) setTrace(traceparent, tracestate string) {
	e.Attrs["traceparent"] = traceparent
	if tracestate != "" {
		e.Attrs["tracestate"] = tracestate
	} else {
		delete(e.Attrs, "tracestate")
	}
}

// writeTrace puts ev's trace context on an HTTP request as the plain
// traceparent and tracestate headers (ev.WriteHeaders writes the ce-
// attributes).
func (e *Event) writeTrace(h http.Header) {
	if tp := e.Attrs["traceparent"]; tp != "" {
		h.Set("traceparent", tp)
	}
	if ts := e.Attrs["tracestate"]; ts != "" {
		h.Set("tracestate", ts)
	}
}

// lowerHex decodes s, lower-case hex digits only, into dst, which is
// len(s)/2 bytes long.
func lowerHex(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	n, err := hex.AppendDecode(dst[:0], []byte(s))
	return err == nil && len(n) == len(dst)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
