package testscripts

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/porttest"
)

// eventsManifest is the project of TestDevLocalEvents: a Go HTTP function
// scaled to zero (web), a Python CloudEvents function triggered by an
// event type, with live config (greet), and a Node.js function on a
// schedule, scaled to zero too (tick). Its events.bus is the cluster's:
// dev --local ignores it.
const eventsManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
events:
  bus: nats://nats.nats.svc.cluster.local:4222
workloads:
  - name: web
    kind: function
    lang: go
    path: web
    port: %d
    scale: {min: 0, idle: 2s}
  - name: greet
    kind: function
    lang: python
    template: cloudevents
    path: greet
    port: %d
    liveConfig: true
    config: {GREETING: %s}
    env: {LOG_LEVEL: debug} # its "received event" line, counted below
    triggers:
      - event: com.example.hello
    delivery: {retries: 2, backoff: 200ms, timeout: 5s}
  - name: tick
    kind: function
    lang: node
    path: tick
    port: %d
    scale: {min: 0, idle: 1s}
    triggers:
      - schedule: "@every 2s"
`

// devRun is a running `skiff dev --local -o json`: its events (stderr) and
// its workloads' log events (stdout), each awaited by what they say.
type devRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan devEvent
	logs   chan devEvent
	seen   []devEvent // every loop event read so far
	logged []devEvent // every log event read so far
}

func startDev(t *testing.T, bin, dir string, env []string) *devRun {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--local", "-o", "json")
	cmd.Dir, cmd.Env = dir, env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	r := &devRun{t: t, cmd: cmd, events: make(chan devEvent, 1024), logs: make(chan devEvent, 1<<16)}
	scan := func(rd interface{ Read([]byte) (int, error) }, to chan devEvent) {
		defer close(to)
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev devEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				to <- ev
			}
		}
	}
	go scan(stderr, r.events)
	go scan(stdout, r.logs)
	return r
}

// awaitEvent reads loop events until ok says one is it; a failed cycle
// fails the test.
func (r *devRun) awaitEvent(what string, timeout time.Duration, ok func(devEvent) bool) devEvent {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-r.events:
			if !open {
				r.t.Fatalf("skiff dev ended while waiting for %s; events: %+v", what, r.seen)
			}
			r.seen = append(r.seen, ev)
			if ev.Event == "failed" {
				r.t.Fatalf("%s failed while waiting for %s: %s\n%s", ev.Workload, what, ev.Error, ev.Detail.Output)
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			r.t.Fatalf("no %s within %s; events: %+v", what, timeout, r.seen)
		}
	}
}

// awaitLog reads log events until n lines of workload (counting those
// read before) contain every one of parts.
func (r *devRun) awaitLog(workload string, n int, timeout time.Duration, parts ...string) {
	r.t.Helper()
	deadline := time.After(timeout)
	for r.countLogs(workload, parts...) < n {
		select {
		case ev, open := <-r.logs:
			if !open {
				r.t.Fatalf("skiff dev ended while waiting for a line of %s with %q", workload, parts)
			}
			r.logged = append(r.logged, ev)
		case <-deadline:
			r.t.Fatalf("not %d lines of %s with %q within %s", n, workload, parts, timeout)
		}
	}
}

// countLogs counts the lines of workload read so far that contain every
// one of parts.
func (r *devRun) countLogs(workload string, parts ...string) int {
	n := 0
	for _, ev := range r.logged {
		if ev.Workload == workload && containsAll(ev.Detail.Message, parts...) {
			n++
		}
	}
	return n
}

// drainLogs reads the log events that arrived so far.
func (r *devRun) drainLogs() {
	for {
		select {
		case ev, open := <-r.logs:
			if !open {
				return
			}
			r.logged = append(r.logged, ev)
		default:
			return
		}
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestDevLocalEvents is issue 28's "done when", with no cluster and no
// network: skiff dev --local runs a Go HTTP function, a Python CloudEvents
// function on an event type and a Node.js function on a schedule with its
// own bus; events published with the CLI are handled once each and their
// replies are on the stream; a schedule ticks; an event a workload sends
// to its K_SINK reaches another's trigger; a failing handler's event goes
// to the dead letters after its retries and replays once fixed; a config
// edit reaches the live-config workload without a restart; a workload
// with scale.min 0 starts on its first request (or event) and stops when
// idle; Ctrl-C leaves no process, port, state or lock.
func TestDevLocalEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"go", "python3", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	bin := buildSkiff(t)
	work := t.TempDir()
	env := []string{"SKIFF_CONFIG_DIR=" + filepath.Join(work, "config"), "NO_COLOR=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBERNETES_") {
			env = append(env, kv)
		}
	}
	proj := filepath.Join(work, "shop")
	skiff := func(dir string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var out, errOut strings.Builder
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, &out, &errOut
		err := cmd.Run()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("skiff %s: %v", args, err)
		}
		return out.String(), errOut.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := skiff(proj, args...)
		if code != 0 {
			t.Fatalf("skiff %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	if out, errOut, code := skiff(work, "init", proj, "--kind", "function", "--lang", "go", "--name", "web", "--non-interactive"); code != 0 {
		t.Fatalf("skiff init: %s%s", out, errOut)
	}
	must("add", "greet", "--kind", "function", "--lang", "python", "--template", "cloudevents", "--non-interactive")
	must("add", "tick", "--kind", "function", "--lang", "node", "--non-interactive")
	ports := porttest.Ports(t, 3)
	manifest := filepath.Join(proj, "skiff.yaml")
	writeManifest := func(greeting string) {
		t.Helper()
		save(t, manifest, []byte(fmt.Sprintf(eventsManifest, ports[0], ports[1], greeting, ports[2])))
	}
	writeManifest("Hello")
	// The user's code: web sends an event to its K_SINK on GET /emit; tick
	// takes an event without data and logs its type.
	replaceIn(t, filepath.Join(proj, "web", "handler.go"), "return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {",
		"return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {\n\t\tif r.URL.Path == \"/emit\" {\n\t\t\temit(w, r)\n\t\t\treturn\n\t\t}")
	if err := os.WriteFile(filepath.Join(proj, "web", "emit.go"), []byte(emitGo), 0o644); err != nil {
		t.Fatal(err)
	}
	replaceIn(t, filepath.Join(proj, "tick", "handler.js"), "        body = JSON.parse(await readBody(req));",
		"        const raw = await readBody(req);\n        logger.info('event', { type: req.headers['ce-type'], id: req.headers['ce-id'] });\n        body = raw ? JSON.parse(raw) : {};")

	// Start to all ready.
	started := time.Now()
	dev := startDev(t, bin, proj, env)
	readyAt := map[string]time.Duration{}
	dev.awaitEvent("web, greet and tick ready", 3*time.Minute, func(ev devEvent) bool {
		if ev.Event == "ready" {
			readyAt[ev.Workload] = time.Since(started)
		}
		return len(readyAt) == 3
	})
	t.Logf("dev --local: start to all ready in %s (%v)", time.Since(started).Round(time.Millisecond), readyAt)
	notice := ""
	for _, ev := range dev.seen {
		if ev.Event == "notice" && strings.HasPrefix(ev.Detail.Message, "Events:") {
			notice = ev.Detail.Message
		}
	}
	if !containsAll(notice, "a bus in this process at nats://127.0.0.1:", "events.bus nats://nats.nats.svc.cluster.local:4222 is for deploy: not used locally", "K_SINK http://127.0.0.1:") {
		t.Errorf("the first lines do not say where the bus is and that events.bus is not used: %q", notice)
	}
	// web (scale.min 0) starts on its first request, and stops after its
	// idle time.
	if body := get(t, fmt.Sprintf("http://127.0.0.1:%d/?name=Ada", ports[0])); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("web answered %q", body)
	}
	for _, want := range []string{"web: woken by a request", "web: stopped after 2s without a request"} {
		ev := dev.awaitEvent(want, 30*time.Second, func(ev devEvent) bool {
			return ev.Event == "notice" && strings.HasPrefix(ev.Detail.Message, want)
		})
		t.Logf("%s", ev.Detail.Message)
	}
	var state struct {
		Bus, Sink string
	}
	data, err := os.ReadFile(filepath.Join(proj, ".skiff", "dev.json"))
	if err != nil || json.Unmarshal(data, &state) != nil || !strings.HasPrefix(state.Bus, "nats://127.0.0.1:") {
		t.Fatalf(".skiff/dev.json: %s %v", data, err)
	}

	// replies returns the reply events stored so far, by subject (the
	// event each answers), once count of them are there.
	replies := func(count int) map[string]string {
		t.Helper()
		out := must("events", "tail", "--since", "1h", "--type", "com.example.greeting.reply", "--count", fmt.Sprint(count), "-o", "json")
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Attributes map[string]string        `json:"attributes"`
				Data       struct{ Message string } `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("tail: %q: %v", line, err)
			}
			got[ev.Attributes["subject"]] = ev.Data.Message
		}
		return got
	}

	// Events published with the CLI: each handled once, each reply stored.
	for i := 1; i <= 5; i++ {
		out := must("events", "publish", "com.example.hello", "--id", fmt.Sprintf("e%d", i), "--data", fmt.Sprintf(`{"name":"N%d"}`, i), "-o", "json")
		if !strings.Contains(out, `"stream":"shop"`) && !strings.Contains(out, `"stream": "shop"`) {
			t.Fatalf("publish: %s", out)
		}
	}
	got := replies(5)
	for i := 1; i <= 5; i++ {
		if want := fmt.Sprintf("Hello, N%d!", i); got[fmt.Sprintf("e%d", i)] != want {
			t.Errorf("reply to e%d: %q, want %q (replies %v)", i, got[fmt.Sprintf("e%d", i)], want, got)
		}
	}
	status := func() (pending, inFlight, dead int) {
		t.Helper()
		var st []struct {
			Pending     int `json:"pending"`
			AckPending  int `json:"ackPending"`
			DeadLetters int `json:"deadLetters"`
		}
		out := must("events", "status", "greet", "-o", "json")
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
			t.Fatalf("events status: %s %v", out, err)
		}
		return st[0].Pending, st[0].AckPending, st[0].DeadLetters
	}
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(timeout)
		for !ok() {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("%s: not within %s", what, timeout)
			}
		}
	}
	waitFor("every event acked", 30*time.Second, func() bool { p, f, _ := status(); return p == 0 && f == 0 })
	for i := 1; i <= 5; i++ {
		dev.awaitLog("greet", 1, 10*time.Second, "received event", fmt.Sprintf(`"e%d"`, i))
	}
	dev.drainLogs()
	for i := 1; i <= 5; i++ {
		if n := dev.countLogs("greet", "received event", fmt.Sprintf(`"e%d"`, i)); n != 1 {
			t.Errorf("e%d was handled %d times", i, n)
		}
	}

	// The schedule ticks (every 2 s) at the Node.js function, which is
	// scaled to zero: each tick's delivery wakes it.
	dev.awaitLog("tick", 2, 20*time.Second, "dev.skiff.schedule")
	dev.awaitEvent("tick woken by its event", 10*time.Second, func(ev devEvent) bool {
		return ev.Event == "notice" && strings.HasPrefix(ev.Detail.Message, "tick: woken by a request")
	})

	// web sends an event to its K_SINK: greet's trigger gets it.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/emit?name=Kay", ports[0]))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("web's /emit: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := replies(6)["emit-Kay"]; got != "Hello, Kay!" {
		t.Errorf("the reply to web's event: %q", got)
	}

	// A failing handler: greet answers 422 to data that is not JSON; after
	// its retries the event is a dead letter.
	req, _ := http.NewRequest(http.MethodPost, state.Sink, strings.NewReader("plain text"))
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "bad-1", "Ce-Source": "/test", "Ce-Type": "com.example.hello", "Content-Type": "text/plain"} {
		req.Header.Set(k, v)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the sink: %v %v", resp, err)
	}
	waitFor("bad-1 dead-lettered", 30*time.Second, func() bool { _, _, d := status(); return d == 1 })
	var dls []struct {
		ID         string `json:"id"`
		Status     int    `json:"status"`
		Deliveries int    `json:"deliveries"`
	}
	if out := must("events", "dlq", "list", "greet", "-o", "json"); json.Unmarshal([]byte(out), &dls) != nil || len(dls) != 1 ||
		dls[0].ID != "bad-1" || dls[0].Status != 422 || dls[0].Deliveries != 3 {
		t.Fatalf("dead letters: %s", out)
	}
	// The fix, then the replay: handled.
	replaceIn(t, filepath.Join(proj, "greet", "handler.py"), `raise HTTPError(422, 'the event data must be JSON such as {"name":"Ada"}') from None`, `data = {"name": "Plain"}`)
	dev.awaitEvent("greet's cycle", time.Minute, func(ev devEvent) bool { return ev.Event == "cycle-started" && ev.Workload == "greet" })
	dev.awaitEvent("greet ready", time.Minute, func(ev devEvent) bool { return ev.Event == "ready" && ev.Workload == "greet" })
	must("events", "dlq", "replay", "greet", "--all")
	if got := replies(7)["bad-1"]; got != "Hello, Plain!" {
		t.Errorf("the reply to the replayed event: %q", got)
	}
	if _, _, d := status(); d != 0 {
		t.Errorf("%d dead letters after the replay", d)
	}

	// A config edit reaches greet without a restart (liveConfig); web and
	// tick, without live config, restart.
	writeManifest("Bonjour")
	dev.awaitEvent("the live config written", 30*time.Second, func(ev devEvent) bool {
		return ev.Event == "notice" && ev.Workload == "greet" && strings.Contains(ev.Detail.Message, "live config (no restart)")
	})
	// The plumbing reads the folder every 2 s: the replies say when.
	deadline := time.Now().Add(20 * time.Second)
	for n := 1; ; n++ {
		id := fmt.Sprintf("live-%d", n)
		must("events", "publish", "com.example.hello", "--id", id, "--data", `{"name":"Zed"}`)
		got := replies(7 + n)[id]
		if got == "Bonjour, Zed!" {
			break
		}
		if got != "Hello, Zed!" || time.Now().After(deadline) {
			t.Fatalf("after the config edit, the reply: %q", got)
		}
	}
	dev.awaitEvent("web and tick ready again", time.Minute, func(ev devEvent) bool {
		if ev.Workload == "greet" && (ev.Event == "cycle-started" || ev.Event == "ready") {
			t.Fatalf("greet restarted for a config edit: %+v", ev)
		}
		return ev.Event == "ready" && ev.Workload == "tick"
	})

	// Ctrl-C: exit 0, and nothing left: no state or lock, no port, no
	// process running in the project.
	if err := dev.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range dev.events {
		}
		for range dev.logs {
		}
		done <- dev.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("skiff dev after SIGINT: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("skiff dev did not stop within 60s of SIGINT")
	}
	for _, f := range []string{"dev.json", "dev.lock"} {
		if _, err := os.Stat(filepath.Join(proj, ".skiff", f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf(".skiff/%s is left: %v", f, err)
		}
	}
	addrs := []string{strings.TrimPrefix(state.Bus, "nats://"), strings.TrimPrefix(state.Sink, "http://")}
	for _, p := range ports {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after skiff dev stopped", a)
		}
	}
	if runtime.GOOS == "linux" {
		if left := processesIn(proj); len(left) > 0 {
			t.Errorf("processes left running in the project: %v", left)
		}
	}
}

// processesIn lists the processes whose working folder is dir or under it.
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+string(filepath.Separator))) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// emitGo is web's code that sends an event to K_SINK.
const emitGo = `package main

import (
	"net/http"
	"os"
	"strings"
)

// emit sends com.example.hello with the name asked to the bus, through
// the sink skiff gives every workload (K_SINK), and answers its status.
func emit(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, os.Getenv("K_SINK"), strings.NewReader(` + "`" + `{"name":"` + "`" + `+name+` + "`" + `"}` + "`" + `))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "emit-"+name)
	req.Header.Set("Ce-Source", "/web")
	req.Header.Set("Ce-Type", "com.example.hello")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
}
`
