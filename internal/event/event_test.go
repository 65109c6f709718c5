package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Every kind has a phase and a status, and every line carries the
// schema's version: what docs/events-json.md promises.
func TestEveryLineIsOfTheSchema(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for kind := range phaseStatus {
		data, err := json.Marshal(Event{Time: at, Kind: kind, Run: "r1", Workload: "orders"})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if got["v"] != float64(Version) || got["event"] != string(kind) || got["phase"] == "" || got["status"] == "" ||
			got["run"] != "r1" || got["workload"] != "orders" || got["time"] != "2026-12-06T09:00:00Z" {
			t.Errorf("%s: %s", kind, data)
		}
	}
}

func TestDetailsDurationsAndErrors(t *testing.T) {
	ev := Event{Kind: Failed, Workload: "orders", Release: "shop-orders", Duration: 1500 * time.Millisecond,
		Err: errors.New("not ready"), Steps: map[string]time.Duration{"build": 250 * time.Millisecond}}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Phase, Status, Error string
		Seconds              float64
		Detail               map[string]any
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"release": "shop-orders", "steps": map[string]any{"build": 0.25}}
	if got.Phase != PhaseDeploy || got.Status != "failed" || got.Error != "not ready" || got.Seconds != 1.5 || !reflect.DeepEqual(got.Detail, want) {
		t.Errorf("%s", data)
	}
	// A failure before any release is the build's; a phase given wins.
	if p, _ := (Event{Kind: Failed}).PhaseStatus(); p != PhaseBuild {
		t.Errorf("a failure with no release is of phase %s", p)
	}
	if p, _ := (Event{Kind: Failed, Phase: PhaseCycle, Release: "x"}).PhaseStatus(); p != PhaseCycle {
		t.Errorf("a cycle's failure is of phase %s", p)
	}
	// No detail: none written.
	if data, _ := json.Marshal(Event{Kind: CycleStarted, Workload: "orders"}); json.Valid(data) && string(data) != "" {
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if _, ok := m["detail"]; ok {
			t.Errorf("an event with no detail: %s", data)
		}
	}
}

// What MarshalJSON writes, UnmarshalJSON reads back.
func TestRoundTrip(t *testing.T) {
	in := Event{Time: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), Kind: Failed, Phase: PhaseCycle, Run: "r", Workload: "w",
		Duration: 2 * time.Second, Error: "boom", Output: "./main.go:3: syntax error", URL: "http://127.0.0.1:18080",
		Steps: map[string]time.Duration{"build": time.Second}, Platforms: []string{"linux/amd64"}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Event
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("read back %+v\nwrote %+v", out, in)
	}
}
