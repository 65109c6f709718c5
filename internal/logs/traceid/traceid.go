// Package traceid finds the W3C trace id a log line carries, so that
// `skiff logs --trace` can keep one request's lines across workloads. It
// has no dependencies on the cluster: the command layer uses it.
package traceid

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffdev/skiff/internal/engine"
)

// Line is one log line of one container.
type Line = engine.LogLine

// Field is the name under which a log line carries the trace id of
// the request or event delivery it is about: the trace_id field of a JSON
// line, or trace_id=<id> in a line of text. skiff's templates and
// skiff-relay write it.
const Field = "trace_id"

// Parse reads the trace id the user names: 32 hex digits (as log
// lines carry it) or a whole traceparent header (00-<trace id>-<span>-<flags>).
// It returns the id in lower case, as W3C trace context writes it.
func Parse(s string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(s))
	if parts := strings.Split(id, "-"); len(parts) >= 4 && len(parts[0]) == 2 {
		id = parts[1]
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a trace id: want 32 hex digits such as 4bf92f3577b34da6a3ce929d0e0e4736, or a traceparent", s)
	}
	if strings.Trim(id, "0") == "" {
		return "", fmt.Errorf("%q is not a trace id: it is all zeros", s)
	}
	return id, nil
}

// Of is the trace id of a log line's message: its trace_id field when
// it is a JSON object, else the value of trace_id= in its text; "" when it
// has none.
func Of(message string) string {
	m := strings.TrimSpace(message)
	if strings.HasPrefix(m, "{") {
		var rec map[string]json.RawMessage
		if json.Unmarshal([]byte(m), &rec) == nil {
			var id string
			if raw, ok := rec[Field]; ok && json.Unmarshal(raw, &id) == nil {
				return strings.ToLower(id)
			}
			return ""
		}
	}
	for rest := m; ; {
		i := strings.Index(rest, Field+"=")
		if i < 0 {
			return ""
		}
		before := i == 0 || !isWordByte(rest[i-1])
		rest = rest[i+len(Field)+1:]
		if !before {
			continue
		}
		rest = strings.TrimPrefix(rest, `"`)
		end := 0
		for end < len(rest) && isWordByte(rest[end]) {
			end++
		}
		return strings.ToLower(rest[:end])
	}
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// In reports whether l is a line of the trace id (lower case).
func In(l Line, id string) bool {
	// Most lines do not mention it at all: skip parsing those.
	if !strings.Contains(strings.ToLower(l.Message), id) {
		return false
	}
	return Of(l.Message) == id
}

// Filter reads lines until in closes and returns those of the trace id (in
// lower case, see Parse), in time order; lines of one time keep the
// order they came in.
func Filter(in <-chan Line, id string) []Line {
	var out []Line
	for l := range in {
		if In(l, id) {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b Line) int { return a.Time.Compare(b.Time) })
	return out
}
