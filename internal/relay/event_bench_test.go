package relay

import (
	"net/http"
	"testing"
)

// BenchmarkEventRoundTrip is the relay's own handling of one delivered
// event and its reply, without the network: the event read from its bus
// message, given a trace, written on the request to the handler; the
// handler's reply read from its answer, routed and made a bus message.
// (-benchmem: 33 allocations, from 66 before the header names were made
// once.)
func BenchmarkEventRoundTrip(b *testing.B) {
	in := &Event{Attrs: map[string]string{"specversion": "1.0", "id": "burst-abc-123", "source": "/bench", "type": "com.example.image.resized",
		"time": "2026-12-06T19:00:00Z"}, ContentType: "application/json", Data: []byte(`{"name":"Ada"}`)}
	msg := in.Message("bench.com.example.image.resized")
	answer := http.Header{}
	(&Event{Attrs: map[string]string{"specversion": "1.0", "id": "0b7d1c2e-1", "source": "/warm", "type": "com.example.greeting.reply",
		"subject": "burst-abc-123"}, ContentType: "application/json"}).WriteHeaders(answer)
	d := &Dispatcher{Stream: "bench", Triggers: []Trigger{{Filter: "bench.com.example.image.resized"}}}
	b.ReportAllocs()
	for b.Loop() {
		ev, err := FromMessage(msg.Header, msg.Data)
		if err != nil {
			b.Fatal(err)
		}
		ev.carryTrace(http.Header{}, false, nil, d.sample)
		h := http.Header{}
		ev.WriteHeaders(h)
		ev.writeTrace(h)
		out, err := readEvent(answer, []byte(`{"message":"Hello, Ada!"}`))
		if err != nil {
			b.Fatal(err)
		}
		out.carryTrace(http.Header{}, false, ev, nil)
		subject, err := Subject(d.Stream, out.Type())
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range d.Triggers {
			if SubjectMatches(t.Filter, subject) {
				b.Fatal("the reply matched the trigger")
			}
		}
		_ = out.Message(subject)
		_ = ev.Sampled()
	}
}
