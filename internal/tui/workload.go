package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/metrics/window"
	"github.com/skiffdev/skiff/internal/stats"
)

// workload is the part of the dashboard that is one workload's: its row
// in the list, its log pane, its events and release history as last
// loaded, its port-forward and the action running on it. The Model routes
// the messages about a workload to it (update) and asks it for the parts
// of the screen that are its own (row, tabInfo, body, problem).
type workload struct {
	name, kind string
	// status is the last status read; seen says whether there was one.
	status engine.Status
	seen   bool
	logs   *logView
	// events and history are nil until loaded (or after something made
	// them stale).
	events  *loaded[Event]
	history *loaded[engine.Revision]
	forward string // the local address of its port-forward, "" when none
	busy    string // what runs on it ("Rolling orders back…"), "" when idle
	// activity is what the actions on it reported (the session's events),
	// oldest first, at most maxActivity; step is the last of them while
	// an action runs.
	activity []event.Event
	step     string
	// serving is a sample a SampleEvery of how it served, over the last
	// 15 minutes (the sparklines and the Serving pane).
	serving window.Series
}

// loaded is what a pane last loaded from the backend.
type loaded[T any] struct {
	items   []T
	err     error
	loading bool
	at      time.Time
}

func newWorkload(name, kind string, logLines int) *workload {
	return &workload{name: name, kind: kind, logs: newLogView(logLines)}
}

// workloadMsg is a message about one workload, which the Model hands to
// that workload's update.
type workloadMsg interface{ about() string }

func (m logBatchMsg) about() string   { return m.workload }
func (m eventsMsg) about() string     { return m.workload }
func (m historyMsg) about() string    { return m.workload }
func (m actionDoneMsg) about() string { return m.workload }
func (m forwardMsg) about() string    { return m.workload }
func (m invokeMsg) about() string     { return m.workload }
func (m activityMsg) about() string   { return m.ev.Workload }

// update applies a message about the workload to its state; what goes
// beyond it (the message line, overlays, commands) is the Model's.
func (w *workload) update(msg workloadMsg, now time.Time) {
	switch msg := msg.(type) {
	case logBatchMsg:
		w.logs.add(msg.lines)
	case eventsMsg:
		w.events = &loaded[Event]{items: msg.events, err: msg.err, at: now}
	case historyMsg:
		w.history = &loaded[engine.Revision]{items: msg.revs, err: msg.err, at: now}
	case actionDoneMsg:
		w.busy = ""
		if msg.err != nil {
			return
		}
		if msg.kind == actDelete {
			w.forward = ""
		}
		w.forget(true)
	case forwardMsg:
		w.busy = ""
		if msg.err == nil {
			w.forward = msg.addr
		}
	case invokeMsg:
		w.busy = ""
	case activityMsg:
		w.activity = append(w.activity, msg.ev)
		if n := len(w.activity) - maxActivity; n > 0 {
			w.activity = slices.Delete(w.activity, 0, n)
		}
		if w.busy != "" {
			w.step = describe(msg.ev)
		}
	}
}

// progress is the workload's part of the message line: the action running
// and the last step it reported ("" when idle).
func (w *workload) progress() string {
	if w.busy == "" || w.step == "" {
		return w.busy
	}
	return w.busy + " · " + w.step
}

// setStatus records a new status and reports whether anything shown about
// the workload changed; newRevision says whether its release changed.
func (w *workload) setStatus(s engine.Status) (changed, newRevision bool) {
	old, seen := w.status, w.seen
	w.status, w.seen, w.kind = s, true, s.Kind
	newRevision = !seen || old.Revision != s.Revision
	changed = newRevision || old.State != s.State || old.Ready != s.Ready || old.Restarts != s.Restarts || old.URL != s.URL
	return changed, newRevision
}

// forget drops the loaded events (and the history with history), to be
// loaded again when next shown.
func (w *workload) forget(history bool) {
	w.events = nil
	if history {
		w.history = nil
	}
}

// startLoading marks a pane as loading; false when it already is.
func startLoading[T any](l **loaded[T]) bool {
	switch {
	case *l == nil:
		*l = &loaded[T]{loading: true}
	case (*l).loading:
		return false
	default:
		(*l).loading = true
	}
	return true
}

// row is the workload's line in the list.
func (w *workload) row(c columns, selected bool, st *styles, age func(time.Time) string) string {
	s := w.status
	mark := "  "
	if selected {
		mark = "▸ "
	}
	state, rev, ready, rst, image, since, endpoint := "", "", "", "", "", "", ""
	if w.seen {
		state = s.State
		if s.Revision > 0 {
			rev = fmt.Sprint(s.Revision)
		}
		if s.State != engine.StateNotDeployed {
			ready = fmt.Sprintf("%d/%d", s.Ready, s.Desired)
			rst = fmt.Sprint(s.Restarts)
			image = shortDigest(s.Image)[:min(len(shortDigest(s.Image)), max(0, c.image-1))]
			since = age(s.Updated)
			// An exposed workload shows where it is reached from outside.
			endpoint = shortEndpoint(s.Endpoint)
			if s.URL != "" {
				endpoint = s.URL
			}
		}
	}
	if w.forward != "" {
		endpoint = "⇄ " + w.forward
	}
	row := c.row(mark, w.name, w.kind, st.state(state), eventsCell(s.Events), w.sparks(c, st), rev, ready, rst, image, since, endpoint)
	if selected {
		row = st.title.Render(row)
	}
	return row
}

// sparks are the workload's sparklines in the list: requests per second,
// p99 and errors per second, each with its last value.
func (w *workload) sparks(c columns, st *styles) [3]string {
	var out [3]string
	if len(w.serving.Points) == 0 {
		return out
	}
	last, _ := w.serving.Last()
	cells := []struct {
		width int
		f     func(window.Point) float64
		value string
	}{
		{c.rate, func(p window.Point) float64 { return p.Rate }, stats.FormatRate(last.Rate)},
		{c.p99, func(p window.Point) float64 { return p.P99 }, stats.FormatSeconds(last.P99)},
		{c.errs, func(p window.Point) float64 { return p.Errors }, stats.FormatRate(last.Errors)},
	}
	for i, cell := range cells {
		if cell.width == 0 {
			continue
		}
		n := cell.width - 1 - sparkValue
		style := st.info
		if i == 2 && last.Errors > 0 {
			style = st.bad
		}
		out[i] = style.Render(sparkline(lastN(&w.serving, n, cell.f))) + " " + cell.value
	}
	return out
}

// tabInfo is what the tab bar says about the workload's pane t.
func (w *workload) tabInfo(t tab, st *styles, loc *time.Location) string {
	parts := []string{st.title.Render(w.name)}
	if w.seen && w.status.URL != "" && w.status.State != engine.StateNotDeployed {
		parts = append(parts, st.info.Render(w.status.URL))
	}
	switch t {
	case tabLogs:
		v := w.logs
		if v.follow {
			parts = append(parts, "following")
		} else if n := v.newer(); n > 0 {
			parts = append(parts, st.warn.Render(fmt.Sprintf("paused, %d new", n)))
		} else {
			parts = append(parts, st.warn.Render("paused"))
		}
		if v.filter != "" {
			parts = append(parts, fmt.Sprintf("filter %q", v.filter))
		}
		if v.wrap {
			parts = append(parts, "wrap")
		}
	case tabEvents:
		if e := w.events; e != nil && !e.at.IsZero() {
			parts = append(parts, "at "+e.at.In(loc).Format("15:04:05"))
		}
	case tabHistory:
		if w.seen && w.status.Revision > 0 {
			parts = append(parts, fmt.Sprintf("revision %d", w.status.Revision))
		}
	case tabServing:
		if last, ok := w.serving.Last(); ok {
			parts = append(parts, "at "+last.At.In(loc).Format("15:04:05"))
		}
	}
	return strings.Join(parts, " · ")
}

// body is the workload's pane t: h rows (or fewer) of width cells.
func (w *workload) body(t tab, width, h int, st *styles, loc *time.Location) []string {
	switch t {
	case tabEvents:
		return w.eventLines(width, h, st, loc)
	case tabHistory:
		return w.historyLines(h, st, loc)
	}
	v := w.logs
	if v.lines.len() == 0 {
		return []string{st.dim.Render("  waiting for log lines of " + w.name + "…")}
	}
	rows := v.render(width, h, st, loc)
	if len(rows) == 0 && v.filter != "" {
		return []string{st.dim.Render(fmt.Sprintf("  no line matches %q", v.filter))}
	}
	// Keep the newest line at the bottom of the pane.
	if len(rows) < h {
		rows = append(make([]string, h-len(rows)), rows...)
	}
	return rows
}

func (w *workload) eventLines(width, h int, st *styles, loc *time.Location) []string {
	// The pane lists the Kubernetes events and, among them by time, what
	// the dashboard's actions reported.
	var items []Event
	for _, ev := range w.activity {
		items = append(items, asEvent(ev))
	}
	var note string
	switch e := w.events; {
	case e == nil || (e.loading && e.at.IsZero()):
		note = st.dim.Render("  loading events…")
	case e.err != nil:
		note = st.bad.Render("  " + e.err.Error())
	default:
		items = append(slices.Clone(e.items), items...)
		slices.SortStableFunc(items, func(a, b Event) int { return a.Time.Compare(b.Time) })
	}
	switch {
	case len(items) == 0 && note != "":
		return []string{note}
	case len(items) == 0:
		return []string{st.dim.Render("  no recent events for " + w.name)}
	case note != "":
		return append([]string{note}, w.eventRows(items, width, h-1, st, loc)...)
	}
	return w.eventRows(items, width, h, st, loc)
}

// eventRows renders events in at most h rows.
func (w *workload) eventRows(items []Event, width, h int, st *styles, loc *time.Location) []string {
	// Newest at the bottom; on a narrow screen each event takes two rows,
	// the message under its heading.
	twoRows := width < 110
	var out []string
	for i := len(items) - 1; i >= 0 && len(out) < h; i-- {
		ev := items[i]
		typ := st.dim.Render(pad(ev.Type, 8))
		switch {
		case ev.Type == "Warning":
			typ = st.warn.Render(pad(ev.Type, 8))
		case ev.Type == activityType && ev.Reason == string(event.Failed):
			typ = st.bad.Render(pad(ev.Type, 8))
		case ev.Type == activityType:
			typ = st.info.Render(pad(ev.Type, 8))
		}
		count := ""
		if ev.Count > 1 {
			count = fmt.Sprintf(" ×%d", ev.Count)
		}
		head := fmt.Sprintf("%s %s%s %s", st.logTime.Render(ev.Time.In(loc).Format("15:04:05")), typ,
			pad(ev.Reason+count, 20), st.info.Render(shortObject(ev.Object)))
		if !twoRows {
			out = append(out, pad(head, 8+1+8+20+1+24)+" "+ev.Message)
			continue
		}
		out = append(out, "    "+st.dim.Render(ev.Message), head)
	}
	out = out[:min(len(out), max(0, h))]
	slices.Reverse(out)
	return out
}

func (w *workload) historyLines(h int, st *styles, loc *time.Location) []string {
	hs := w.history
	switch {
	case hs == nil || (hs.loading && hs.at.IsZero()):
		return []string{st.dim.Render("  loading the release history…")}
	case hs.err != nil:
		return []string{st.bad.Render("  " + hs.err.Error())}
	case len(hs.items) == 0:
		return []string{st.dim.Render("  no release history")}
	}
	cur := w.status.Revision
	out := []string{st.header.Render("  REV  UPDATED         STATUS      IMAGE         DESCRIPTION")}
	for i := len(hs.items) - 1; i >= 0 && len(out) < h; i-- {
		r := hs.items[i]
		mark := "  "
		if r.Revision == cur {
			mark = "* "
		}
		status := pad(r.Status, 12)
		switch r.Status {
		case "deployed":
			status = st.ok.Render(status)
		case "failed":
			status = st.bad.Render(status)
		}
		out = append(out, fmt.Sprintf("%s%3d  %s  %s%s %s", mark, r.Revision, r.Updated.In(loc).Format("2006-01-02 15:04"),
			status, pad(shortDigest(r.Image), 13), r.Description))
	}
	return out
}

// problem is the first line of the workload's first pod problem, "" when
// it has none.
func (w *workload) problem() string {
	if len(w.status.Problems) == 0 {
		return ""
	}
	first, _, _ := strings.Cut(w.status.Problems[0].String(), "\n")
	return first
}
