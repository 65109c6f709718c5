package project

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const eventsHead = "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: nats://nats.nats.svc.cluster.local:4222}\nworkloads:\n"

func TestEventsParse(t *testing.T) {
	p, err := Parse([]byte(eventsHead + `- name: thumbs
  kind: function
  lang: go
  template: cloudevents
  triggers:
    - event: com.example.image.uploaded
      source: /uploads
    - event: com.example.*
    - schedule: "*/5 * * * *"
      timeZone: Europe/Berlin
    - schedule: "@hourly"
  delivery: {retries: 5, backoff: 1s, timeout: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("thumbs")
	if len(w.Triggers) != 4 || w.Triggers[2].TimeZone != "Europe/Berlin" || *w.Delivery.Retries != 5 || p.Events.Bus == "" {
		t.Errorf("parsed %+v, %+v", w.Triggers, w.Delivery)
	}
}

// TestTriggersWithoutBus: a project with triggers and no events.bus loads
// (skiff dev --local runs its own bus); RequireBus, which deploy and render
// ask, says which workload needs one, at its line.
func TestTriggersWithoutBus(t *testing.T) {
	for _, head := range []string{"", "events: {stream: orders}\n"} {
		p, err := Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: shop\n" + head + "workloads:\n- name: fn\n  kind: function\n  lang: go\n  triggers: [{event: a.b}]\n"))
		if err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		err = p.RequireBus()
		if err == nil || !IsManifestError(err) {
			t.Fatalf("%q: RequireBus = %v, want a manifest error", head, err)
		}
		line := 7 + strings.Count(head, "\n")
		for _, want := range []string{fmt.Sprintf("line %d", line), "workloads[0].triggers need an event bus", "events: {bus: nats://HOST:4222}", "dev --local"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %q does not say %q", head, err, want)
			}
		}
	}
	p, err := Parse([]byte(eventsHead + "- name: fn\n  kind: function\n  lang: go\n  triggers: [{event: a.b}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RequireBus(); err != nil {
		t.Errorf("with a bus: RequireBus = %v", err)
	}
}

func TestEventsErrors(t *testing.T) {
	fn := "- name: fn\n  kind: function\n  lang: go\n"
	for _, tt := range []struct {
		name, yaml string
		want       []string
	}{
		{"bad bus", "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: http://x}\nworkloads:\n" + fn,
			[]string{"line 3", `events.bus "http://x" is not a nats:// or tls:// URL`}},
		{"bad cron", eventsHead + fn + "  triggers:\n    - schedule: \"61 * * * *\"\n",
			[]string{"line 9", `workloads[0].triggers[0].schedule "61 * * * *" is not a cron expression`}},
		{"bad zone", eventsHead + fn + "  triggers:\n    - schedule: \"@daily\"\n      timeZone: Mars/Olympus\n",
			[]string{"line 10", `timeZone "Mars/Olympus" is not a time zone`, "Europe/Berlin"}},
		{"bad type", eventsHead + fn + "  triggers:\n    - event: com.ex*\n",
			[]string{"line 9", `triggers[0].event "com.ex*" may hold * only as its last part`}},
		{"empty part", eventsHead + fn + "  triggers:\n    - event: com..a\n",
			[]string{`"com..a" has an empty part between dots`}},
		{"neither", eventsHead + fn + "  triggers:\n    - source: /x\n",
			[]string{"triggers[0] has neither event nor schedule"}},
		{"both", eventsHead + fn + "  triggers:\n    - {event: a.b, schedule: \"@daily\"}\n",
			[]string{"triggers[0] has both event and schedule"}},
		{"delivery alone", eventsHead + fn + "  delivery: {retries: 3}\n",
			[]string{"delivery is set, but the workload has no triggers"}},
		{"bad retention", "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents:\n  bus: nats://x:4222\n  retention:\n    maxAge: 7w\n    maxBytes: 1PB\n    deadLetterMaxAge: 0d\nworkloads:\n" + fn,
			[]string{"line 6", `events.retention.maxAge "7w" is not a duration`, "line 7", `events.retention.maxBytes "1PB" is not a size`, "line 8", "7d, 36h or 90m"}},
		{"tiny stream", "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: nats://x:4222, retention: {maxBytes: 10KiB}}\nworkloads:\n" + fn,
			[]string{"line 3", `"10KiB" is less than 1MiB`}},
		{"key without creds", "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: nats://x:4222, signingKey: a.nk}\nworkloads:\n" + fn,
			[]string{"line 3", "events.signingKey is set without events.credentials"}},
		{"tls without ca", "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: tls://x:4222, tls: {}}\nworkloads:\n" + fn,
			[]string{"line 3", "events.tls has no ca"}},
		{"bad delivery", eventsHead + fn + "  triggers: [{event: a.b}]\n  delivery: {retries: -1, backoff: soon, timeout: 1h, concurrency: 0}\n",
			[]string{"delivery.retries -1 is out of range", `delivery.backoff "soon" is not a positive duration`, `delivery.timeout "1h" is longer than 15m`,
				"delivery.concurrency 0 is out of range", "use 1 to 1000"}},
		{"too many at once", eventsHead + fn + "  triggers: [{event: a.b}]\n  delivery:\n    concurrency: 1001\n",
			[]string{"delivery.concurrency 1001 is out of range"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Retention's limits: the defaults, then skiff.yaml's; the bus's files
// from the project's folder, the environment's variables over them.
func TestEventsLimitsAndFiles(t *testing.T) {
	p, err := Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: shop\nevents:\n  bus: tls://nats:4222\n  credentials: nats/cli.creds\n  signingKey: /abs/account.nk\n  tls: {ca: nats/ca.pem}\n  retention: {maxAge: 36h, maxBytes: 512MiB}\nworkloads:\n- name: fn\n  kind: function\n  lang: go\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := (*Events)(nil).Limits(); l.MaxAge != 7*24*time.Hour || l.MaxBytes != 1<<30 || l.DeadLetterMaxAge != 30*24*time.Hour {
		t.Errorf("default limits %+v", l)
	}
	if l := p.Events.Limits(); l.MaxAge != 36*time.Hour || l.MaxBytes != 512<<20 || l.DeadLetterMaxAge != 30*24*time.Hour {
		t.Errorf("limits %+v", l)
	}
	f := p.Events.BusFiles("/proj", nil)
	if f.Creds != "/proj/nats/cli.creds" || f.SigningKey != "/abs/account.nk" || f.CA != "/proj/nats/ca.pem" {
		t.Errorf("files %+v", f)
	}
	f = p.Events.BusFiles("/proj", func(k string) string { return map[string]string{CredsEnv: "/env/u.creds", SigningKeyEnv: "/env/sk"}[k] })
	if f.Creds != "/env/u.creds" || f.SigningKey != "/env/sk" {
		t.Errorf("files with the environment %+v", f)
	}
	for in, want := range map[string]int64{"1GiB": 1 << 30, "512MiB": 512 << 20, "2GB": 2e9, "1048576": 1 << 20} {
		if n, err := ParseBytes(in); err != nil || n != want {
			t.Errorf("ParseBytes(%q) = %d, %v", in, n, err)
		}
	}
}

// An environment changes the bus and how skiff reaches it; the stream
// stays the project's.
func TestEventsForEnvironment(t *testing.T) {
	doc := "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: nats://dev:4222, stream: orders, retention: {maxAge: 1d}}\n" +
		"environments:\n  prod:\n    events:\n      bus: tls://prod:4222\n      credentials: prod.creds\n      signingKey: prod.nk\n      tls: {ca: prod-ca.pem}\n" +
		"workloads:\n- name: fn\n  kind: function\n  lang: go\n"
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := p.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	e := prod.Events
	if e.Bus != "tls://prod:4222" || e.Stream != "orders" || e.Credentials != "prod.creds" || e.SigningKey != "prod.nk" || e.TLS.CA != "prod-ca.pem" || e.Retention.MaxAge != "1d" {
		t.Errorf("prod's events: %+v", e)
	}
	if p.Events.Bus != "nats://dev:4222" || p.Events.Credentials != "" {
		t.Errorf("the top level changed: %+v", p.Events)
	}
	_, err = Parse([]byte(strings.Replace(doc, "      bus: tls://prod:4222\n", "      bus: http://prod\n      stream: x\n", 1)))
	for _, want := range []string{"environments.prod.events.bus", "environments.prod.events sets stream or relayImage"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
