// Package relay moves CloudEvents between NATS JetStream and a function: it
// accepts the events a workload emits (its K_SINK) and stores them in the
// project's stream, and it delivers a trigger's events to the function's
// handler, at least once, with retries and a dead-letter subject. cmd/skiff-relay
// runs it next to the function in its pod.
package relay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/nats-io/nats.go"
)

// Event is a CloudEvent: its context attributes (specversion, id, source,
// type and any others, as strings) and its data, as bytes of ContentType.
type Event struct {
	Attrs       map[string]string
	ContentType string
	Data        []byte
}

// required are the attributes every CloudEvent has.
var required = []string{"specversion", "id", "source", "type"}

func (e *Event) ID() string     { return e.Attrs["id"] }
func (e *Event) Source() string { return e.Attrs["source"] }
func (e *Event) Type() string   { return e.Attrs["type"] }

// Validate says what makes e not a CloudEvent.
func (e *Event) Validate() error {
	var missing []string
	for _, a := range required {
		if e.Attrs[a] == "" {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the event has no %s", strings.Join(missing, ", "))
	}
	if v := e.Attrs["specversion"]; v != "1.0" {
		return fmt.Errorf("specversion %q is not 1.0", v)
	}
	for name := range e.Attrs {
		if !validName(name) {
			return fmt.Errorf("attribute name %q is not lower-case letters and digits", name)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// maxEvent bounds the size of an event the sink accepts (JetStream's
// default maximum message is 1 MiB).
const maxEvent = 1 << 20

// ReadHTTP reads a CloudEvent from an HTTP request in binary mode (ce-*
// headers, the body is the data) or structured mode (a JSON body of
// Content-Type application/cloudevents+json).
func ReadHTTP(r *http.Request) (*Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEvent+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxEvent {
		return nil, fmt.Errorf("the event is larger than %d bytes", maxEvent)
	}
	e, err := readEvent(r.Header, body)
	if e == nil && err == nil {
		return nil, errors.New("the request is not a CloudEvent: no ce-* headers, and its Content-Type is not application/cloudevents+json")
	}
	return e, err
}

// structured reports whether h is that of a CloudEvent in structured mode.
func structured(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/cloudevents+json"
}

// readEvent reads a CloudEvent from HTTP headers and a body, in binary or
// structured mode; neither: nil, nil.
func readEvent(h http.Header, body []byte) (*Event, error) {
	ct := h.Get("Content-Type")
	if structured(h) {
		return parseStructured(body)
	}
	e := &Event{Attrs: make(map[string]string, len(h)), ContentType: ct, Data: body}
	for k, vs := range h {
		if name, ok := attrName(k); ok && len(vs) > 0 {
			e.Attrs[name] = vs[0]
		}
	}
	if len(e.Attrs) == 0 {
		return nil, nil
	}
	return e, e.Validate()
}

// parseStructured reads a CloudEvent in the JSON event format.
func parseStructured(body []byte) (*Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("the structured event is not JSON: %w", err)
	}
	e := &Event{Attrs: map[string]string{}}
	for k, v := range raw {
		switch k {
		case "data":
			e.Data = v
			if e.ContentType == "" {
				e.ContentType = "application/json"
			}
			// A JSON string is data, not JSON text, unless the type says JSON.
			var s string
			if json.Unmarshal(v, &s) == nil && !isJSON(stringAttr(raw, "datacontenttype")) {
				e.Data = []byte(s)
			}
		case "data_base64":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, errors.New("data_base64 is not a string")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("data_base64: %w", err)
			}
			e.Data = b
		case "datacontenttype":
			e.ContentType = stringAttr(raw, k)
		default:
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				e.Attrs[k] = strings.TrimSpace(string(v)) // a number or a boolean extension
			} else {
				e.Attrs[k] = s
			}
		}
	}
	return e, e.Validate()
}

func stringAttr(raw map[string]json.RawMessage, k string) string {
	var s string
	json.Unmarshal(raw[k], &s)
	return s
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// Message is e as a NATS message in binary mode (the CloudEvents NATS
// binding): ce-* headers, the data as payload.
func (e *Event) Message(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, v := range e.Attrs {
		m.Header[headerName(k, false)] = []string{v}
	}
	if e.ContentType != "" {
		m.Header.Set("Content-Type", e.ContentType)
	}
	m.Data = e.Data
	return m
}

// FromMessage reads an event stored by Message.
func FromMessage(h nats.Header, data []byte) (*Event, error) {
	e := &Event{Attrs: make(map[string]string, len(h)), ContentType: h.Get("Content-Type"), Data: data}
	for k, vs := range h {
		if name, ok := attrName(k); ok && len(vs) > 0 {
			e.Attrs[name] = vs[0]
		}
	}
	return e, e.Validate()
}

// WriteHeaders puts e's attributes on an HTTP request or response in
// binary mode.
func (e *Event) WriteHeaders(h http.Header) {
	for k, v := range e.Attrs {
		h[headerName(k, true)] = []string{v}
	}
	if e.ContentType != "" {
		h.Set("Content-Type", e.ContentType)
	}
}

// headerName is the header of attribute a: ce-a on the bus, its canonical
// form (Ce-A) over HTTP. The common attributes' names are constants
// (commonAttr): an event crosses them several times on its way (read from
// the bus, written to the handler, its reply read and stored).
func headerName(a string, canonical bool) string {
	if _, bus, web, ok := commonAttr(a); ok {
		if canonical {
			return web
		}
		return bus
	}
	if canonical {
		return textproto.CanonicalMIMEHeaderKey("ce-" + a)
	}
	return "ce-" + a
}

// attrName is the attribute a header k (in any case) carries, if it is a
// ce- header.
func attrName(k string) (string, bool) {
	if len(k) < 3 || !strings.EqualFold(k[:3], "ce-") {
		return "", false
	}
	if a, _, _, ok := commonAttr(k[3:]); ok {
		return a, true
	}
	return strings.ToLower(k[3:]), true
}

// commonAttr returns, for an attribute most events have, named as it is
// or as in a canonical header (id or Id), its name and its headers on the
// bus and over HTTP.
func commonAttr(name string) (attr, bus, web string, ok bool) {
	switch name {
	case "specversion", "Specversion":
		return "specversion", "ce-specversion", "Ce-Specversion", true
	case "id", "Id":
		return "id", "ce-id", "Ce-Id", true
	case "source", "Source":
		return "source", "ce-source", "Ce-Source", true
	case "type", "Type":
		return "type", "ce-type", "Ce-Type", true
	case "time", "Time":
		return "time", "ce-time", "Ce-Time", true
	case "subject", "Subject":
		return "subject", "ce-subject", "Ce-Subject", true
	case "datacontenttype", "Datacontenttype":
		return "datacontenttype", "ce-datacontenttype", "Ce-Datacontenttype", true
	case "dataschema", "Dataschema":
		return "dataschema", "ce-dataschema", "Ce-Dataschema", true
	case "traceparent", "Traceparent":
		return "traceparent", "ce-traceparent", "Ce-Traceparent", true
	case "tracestate", "Tracestate":
		return "tracestate", "ce-tracestate", "Ce-Tracestate", true
	}
	return "", "", "", false
}
