package relay

import (
	"fmt"
	"strings"

	"github.com/skiffdev/skiff/internal/eventstream"
)

// Subject is where the event of CloudEvent type typ goes on stream:
// <stream>.<type>; the type's dots separate the subject's tokens.
func Subject(stream, typ string) (string, error) {
	if err := eventstream.CheckType(typ, false); err != nil {
		return "", fmt.Errorf("type %q %w", typ, err)
	}
	return stream + "." + typ, nil
}

// Filter is the subject filter of a trigger on events of type pattern: a
// type, or a prefix of whole dot-separated parts ending in ".*"
// ("com.example.*"), or "*" for every event.
func Filter(stream, pattern string) (string, error) {
	if err := eventstream.CheckType(pattern, true); err != nil {
		return "", fmt.Errorf("event %q %w", pattern, err)
	}
	if pattern == "*" {
		return stream + ".>", nil
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		return stream + "." + prefix + ".>", nil
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
