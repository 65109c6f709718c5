package relay

import (
	"fmt"
	"strings"
)

// Subject is where the event of CloudEvent type typ goes on stream:
// <stream>.<type>; the type's dots separate the subject's tokens.
func Subject(stream, typ string) (string, error) {
	if err := checkTokens(typ, false); err != nil {
		return "", fmt.Errorf("type %q: %w", typ, err)
	}
	return stream + "." + typ, nil
}

// Filter is the subject filter of a trigger on events of type pattern: a
// type, or a prefix of whole dot-separated parts ending in ".*"
// ("com.example.*"), or "*" for every event.
func Filter(stream, pattern string) (string, error) {
	if pattern == "*" {
		return stream + ".>", nil
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		if err := checkTokens(prefix, false); err != nil {
			return "", fmt.Errorf("event %q: %w", pattern, err)
		}
		return stream + "." + prefix + ".>", nil
	}
	if err := checkTokens(pattern, true); err != nil {
		return "", fmt.Errorf("event %q: %w", pattern, err)
	}
	return stream + "." + pattern, nil
}

// DeadLetterSubject is where a workload's events go after their last
// retry; the stream <stream>-dlq holds them, apart from the events.
func DeadLetterSubject(stream, workload string) string {
	return "dlq." + stream + "." + workload
}

// DeadLetterStream is the stream of the dead letters of stream.
func DeadLetterStream(stream string) string { return stream + "-dlq" }

func checkTokens(s string, pattern bool) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return fmt.Errorf("has an empty part between dots")
		}
		if strings.ContainsAny(tok, "*> \t\r\n") {
			if pattern && strings.Contains(tok, "*") {
				return fmt.Errorf("a * may only end the pattern, after a dot (com.example.*)")
			}
			return fmt.Errorf("may not hold spaces, * or >")
		}
	}
	return nil
}
