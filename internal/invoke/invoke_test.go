package invoke

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDoAndCloudEvents(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		if r.URL.Path == "/fail" {
			http.Error(w, "nope", http.StatusTeapot)
			return
		}
		w.Header().Set("X-Answer", "42")
		io.WriteString(w, "hi")
	}))
	defer srv.Close()
	ctx := context.Background()

	resp, err := Do(ctx, srv.Client(), srv.URL, Request{Path: "items", Body: []byte(`{"a":1}`), Headers: http.Header{"X-Test": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.OK() || string(resp.Body) != "hi" || resp.Headers.Get("X-Answer") != "42" {
		t.Errorf("response = %+v", resp)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/items" || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("X-Test") != "1" {
		t.Errorf("request = %s %s %v", got.Method, got.URL.Path, got.Header)
	}

	resp, _ = Do(ctx, srv.Client(), srv.URL, Request{Method: "DELETE", Path: "/fail"})
	if resp.OK() || resp.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d", resp.StatusCode)
	}

	ev := CloudEvent{Type: "com.example.ping", Source: "skiff/test", Data: []byte(`{"n":1}`)}
	req, _ := ev.Request("/")
	Do(ctx, srv.Client(), srv.URL, req)
	if got.Header.Get("ce-type") != "com.example.ping" || got.Header.Get("ce-specversion") != "1.0" || got.Header.Get("ce-id") == "" || string(gotBody) != `{"n":1}` {
		t.Errorf("binary event: %v %s", got.Header, gotBody)
	}

	ev.Structured = true
	req, _ = ev.Request("/")
	Do(ctx, srv.Client(), srv.URL, req)
	var env map[string]any
	if err := json.Unmarshal(gotBody, &env); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("Content-Type") != "application/cloudevents+json; charset=utf-8" || env["type"] != "com.example.ping" ||
		env["data"].(map[string]any)["n"].(float64) != 1 || got.Header.Get("ce-type") != "" {
		t.Errorf("structured event: %v %s", got.Header, gotBody)
	}

	if _, err := (CloudEvent{Type: "x"}).Request("/"); err == nil {
		t.Error("an event without a source was accepted")
	}
}

// -o json has the time an answer took in seconds, not a bare count of
// nanoseconds.
func TestResponseJSONSeconds(t *testing.T) {
	data, err := json.Marshal(&Response{Status: "200 OK", StatusCode: 200, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.Contains(s, `"seconds":1.5`) || strings.Contains(s, `"duration"`) {
		t.Errorf("JSON %s, want seconds: 1.5 and no duration", s)
	}
}
