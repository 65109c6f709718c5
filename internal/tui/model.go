package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/metrics/window"
)

// Options configure the dashboard.
type Options struct {
	// Project, Namespace and Context are shown in the title.
	Project, Namespace, Context string
	// Workloads are shown in this order.
	Workloads []Workload
	// Releases maps a workload to its Helm release (for the delete
	// confirmation); may be nil.
	Releases map[string]string
	// LogLines is how many log lines are kept per workload
	// (DefaultLogLines when 0).
	LogLines int
	// Color draws the colors and asks the terminal for its background
	// (see styles); false draws none, nor any bold or underline.
	Color bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Location is the time zone of the times shown (time.Local when nil).
	Location *time.Location
}

type tab int

const (
	tabLogs tab = iota
	tabEvents
	tabHistory
	tabServing
	tabCount
)

func (t tab) String() string { return [...]string{"Logs", "Events", "History", "Serving"}[t] }

// maxBatch bounds the log lines handled in one Update, so the screen keeps
// refreshing under a flood.
const maxBatch = 2000

// refreshEvery re-renders ages and reloads the events shown.
const refreshEvery = 10 * time.Second

// Messages. Subscriptions carry their channel so the model can wait for
// the next value.
type (
	statusSubMsg struct {
		ch  <-chan StatusUpdate
		err error
	}
	statusMsg struct {
		StatusUpdate
		ch <-chan StatusUpdate
	}
	logSubMsg struct {
		workload string
		ch       <-chan engine.LogLine
		err      error
	}
	logBatchMsg struct {
		workload string
		lines    []engine.LogLine
		ch       <-chan engine.LogLine // nil once the stream ended
	}
	eventsMsg struct {
		workload string
		events   []Event
		err      error
	}
	historyMsg struct {
		workload string
		revs     []engine.Revision
		err      error
	}
	actionDoneMsg struct {
		action
		now int // new revision after a rollback
		err error
	}
	forwardMsg struct {
		workload string
		addr     string // empty when stopped
		err      error
	}
	invokeMsg struct {
		workload string
		resp     *Response
		err      error
	}
	activitySubMsg struct {
		ch  <-chan event.Event
		err error
	}
	activityMsg struct {
		ev event.Event
		ch <-chan event.Event
	}
	servingSubMsg struct {
		ch  <-chan ServingUpdate
		err error
	}
	servingMsg struct {
		ServingUpdate
		ch <-chan ServingUpdate
	}
	tickMsg time.Time
)

// Model is the dashboard.
type Model struct {
	ctx  context.Context
	b    Backend
	opts Options
	st   *styles
	keys keyMap
	now  func() time.Time

	width, height int

	// list is every workload in the order shown; byName finds one.
	list    []*workload
	byName  map[string]*workload
	statErr error
	// servingErr is why the last sample of how the workloads serve could
	// not be read (the Serving pane says it).
	servingErr error
	sel        int
	tab        tab

	flash    string
	flashBad bool
	flashAt  time.Time

	filtering bool
	filter    textinput.Model
	overlay   overlay
	wrap      bool
}

// New returns the dashboard model. ctx bounds every call to the backend.
func New(ctx context.Context, b Backend, opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	ti := textinput.New()
	ti.Prompt = "/"
	ti.Placeholder = "filter logs"
	ti.CharLimit = 200
	m := &Model{
		ctx: ctx, b: b, opts: opts, keys: newKeyMap(), now: opts.Now,
		width: 80, height: 24, byName: map[string]*workload{},
		filter: ti,
	}
	for _, w := range opts.Workloads {
		m.add(w.Name, w.Kind)
	}
	m.setStyles(newStyles(opts.Color, false))
	return m
}

// setStyles draws with st from now on, the filter input too.
func (m *Model) setStyles(st *styles) {
	m.st = st
	m.filter.SetStyles(st.input())
}

// add appends a workload to the list. Its logs are wrapped and filtered
// as every other's.
func (m *Model) add(name, kind string) *workload {
	w := newWorkload(name, kind, m.opts.LogLines)
	w.logs.wrap, w.logs.filter = m.wrap, m.filter.Value()
	m.list = append(m.list, w)
	m.byName[name] = w
	return w
}

// Init starts the subscriptions.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.subscribeStatuses(), m.subscribeActivity(), m.subscribeServing(), m.tick()}
	if m.opts.Color {
		// The answer, if the terminal gives one, comes as a message;
		// nothing waits for it.
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	for _, w := range m.list {
		cmds = append(cmds, m.subscribeLogs(w.name))
	}
	return tea.Batch(cmds...)
}

// current is the selected workload (nil when there is none).
func (m *Model) current() *workload {
	if m.sel < 0 || m.sel >= len(m.list) {
		return nil
	}
	return m.list[m.sel]
}

// selected is the name of the selected workload ("" when none).
func (m *Model) selected() string {
	if w := m.current(); w != nil {
		return w.name
	}
	return ""
}

// Update handles a message. A message about one workload goes to that
// workload first (workload.update); what it means for the rest of the
// screen is handled here.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if wm, ok := msg.(workloadMsg); ok {
		if w := m.byName[wm.about()]; w != nil {
			w.update(wm, m.now())
		}
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.filter.SetWidth(max(10, msg.Width-20))
		return m, nil
	case tea.BackgroundColorMsg:
		if m.opts.Color {
			m.setStyles(newStyles(true, !msg.IsDark()))
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		if m.filtering {
			var cmd tea.Cmd
			m.filter, cmd = m.filter.Update(msg)
			m.applyFilter(m.filter.Value())
			return m, cmd
		}
		return m, nil

	case statusSubMsg:
		if msg.err != nil {
			m.statErr = msg.err
			return m, nil
		}
		return m, waitStatus(msg.ch)
	case statusMsg:
		return m, m.onStatus(msg)
	case activitySubMsg:
		if msg.err != nil {
			m.setFlash(true, "following what the actions report: %v", msg.err)
			return m, nil
		}
		return m, m.waitActivity(msg.ch)
	case activityMsg:
		if msg.ev.Workload == "" || m.byName[msg.ev.Workload] == nil {
			// About the project (or a workload not shown): the message
			// line says it.
			m.setFlash(msg.ev.Kind == event.Failed, "%s", describe(msg.ev))
		}
		return m, m.waitActivity(msg.ch)
	case servingSubMsg:
		if msg.err != nil {
			m.servingErr = msg.err
			return m, nil
		}
		return m, waitServing(msg.ch)
	case servingMsg:
		m.servingErr = msg.Err
		if msg.Err == nil {
			for _, st := range msg.Stats {
				if w := m.byName[st.Workload]; w != nil {
					w.serving.Add(window.PointOf(msg.At, st, msg.Window))
				}
			}
		}
		return m, waitServing(msg.ch)
	case logSubMsg:
		if msg.err != nil {
			m.setFlash(true, "following the logs of %s: %v", msg.workload, msg.err)
			return m, nil
		}
		return m, waitLogs(msg.workload, msg.ch)
	case logBatchMsg:
		if msg.ch == nil {
			return m, nil
		}
		return m, waitLogs(msg.workload, msg.ch)
	case eventsMsg:
		return m, nil
	case historyMsg:
		if p, ok := m.overlay.(*picker); ok && p.workload == msg.workload {
			p.setHistory(msg.revs, msg.err)
		}
		return m, nil

	case pickedMsg:
		m.overlay = &confirm{action{kind: actRollback, workload: msg.workload, revision: msg.revision}}
		return m, nil
	case confirmedMsg:
		return m, m.run(msg.action)
	case actionDoneMsg:
		return m, m.onActionDone(msg)
	case forwardMsg:
		switch {
		case msg.err != nil:
			m.setFlash(true, "port-forward to %s: %v", msg.workload, msg.err)
		case msg.addr == "":
			m.setFlash(false, "stopped the port-forward to %s", msg.workload)
		default:
			m.setFlash(false, "%s is forwarded to http://%s", msg.workload, msg.addr)
		}
		return m, nil
	case invokeMsg:
		m.overlay = &responseBox{workload: msg.workload, resp: msg.resp, err: msg.err}
		return m, nil
	case tickMsg:
		if !m.flashBad && m.flash != "" && m.now().Sub(m.flashAt) > refreshEvery {
			m.flash = ""
		}
		cmd := m.tick()
		if m.tab == tabEvents && m.overlay == nil {
			cmd = tea.Batch(cmd, m.loadEvents(m.current()))
		}
		return m, cmd
	}
	return m, nil
}

// setFlash sets the message line, on one line (an error of several lines
// would push the screen down).
func (m *Model) setFlash(bad bool, format string, args ...any) {
	m.flash, m.flashBad, m.flashAt = strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "), bad, m.now()
}

func (m *Model) onStatus(msg statusMsg) tea.Cmd {
	next := waitStatus(msg.ch)
	if msg.Err != nil {
		m.statErr = msg.Err
		return next
	}
	m.statErr = nil
	var cmds []tea.Cmd
	for _, s := range msg.Statuses {
		w := m.byName[s.Workload]
		if w == nil {
			w = m.add(s.Workload, s.Kind)
			cmds = append(cmds, m.subscribeLogs(s.Workload))
		}
		changed, newRevision := w.setStatus(s)
		if changed && w == m.current() {
			cmds = append(cmds, m.loadTab())
		} else if changed {
			// Reloaded when next shown.
			w.forget(newRevision)
		}
	}
	return tea.Batch(append(cmds, next)...)
}

func (m *Model) onActionDone(msg actionDoneMsg) tea.Cmd {
	if msg.err != nil {
		m.setFlash(true, "%s", msg.err)
		return nil
	}
	switch msg.kind {
	case actRollback:
		m.setFlash(false, "✓ %s rolled back to revision %d (now revision %d)", msg.workload, msg.revision, msg.now)
	case actRestart:
		m.setFlash(false, "✓ restarting the pods of %s", msg.workload)
	case actDelete:
		m.setFlash(false, "✓ deleted %s", msg.workload)
	}
	if msg.workload == m.selected() {
		return m.loadTab()
	}
	return nil
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	// Keys typed quickly (or sent by a script) can arrive as one message
	// of several runes: handle them one by one.
	if runes := []rune(msg.Text); len(runes) > 1 {
		var cmds []tea.Cmd
		for _, r := range runes {
			cmds = append(cmds, m.handleKey(tea.KeyPressMsg{Code: r, Text: string(r), Mod: msg.Mod}))
		}
		return tea.Batch(cmds...)
	}
	if m.overlay != nil {
		var cmd tea.Cmd
		m.overlay, cmd = m.overlay.update(msg)
		return cmd
	}
	if m.filtering {
		return m.handleFilterKey(msg)
	}
	k := m.keys
	w := m.current()
	var v *logView
	name := ""
	if w != nil {
		v, name = w.logs, w.name
	}
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.overlay = &helpBox{keys: m.keys}
	case key.Matches(msg, k.Up):
		return m.selectWorkload(m.sel - 1)
	case key.Matches(msg, k.Down):
		return m.selectWorkload(m.sel + 1)
	case key.Matches(msg, k.NextTab):
		return m.showTab((m.tab + 1) % tabCount)
	case key.Matches(msg, k.PrevTab):
		return m.showTab((m.tab + tabCount - 1) % tabCount)
	case key.Matches(msg, k.LogsTab):
		return m.showTab(tabLogs)
	case key.Matches(msg, k.EventsTab):
		return m.showTab(tabEvents)
	case key.Matches(msg, k.HistoryTab):
		return m.showTab(tabHistory)
	case key.Matches(msg, k.ServingTab):
		return m.showTab(tabServing)
	case key.Matches(msg, k.Refresh):
		if w != nil {
			w.forget(true)
		}
		return m.loadTab()

	case key.Matches(msg, k.Filter):
		m.tab = tabLogs
		m.filtering = true
		m.filter.SetValue(m.currentFilter())
		m.filter.CursorEnd()
		return m.filter.Focus()
	case key.Matches(msg, k.Wrap):
		m.wrap = !m.wrap
		for _, w := range m.list {
			w.logs.wrap = m.wrap
		}
	case w == nil:
	case key.Matches(msg, k.Pause):
		if v.follow {
			v.pause()
		} else {
			v.resume()
		}
	case key.Matches(msg, k.End):
		v.resume()
	case key.Matches(msg, k.Top):
		v.top()
	case key.Matches(msg, k.PageUp):
		v.scroll(-max(1, m.logHeight()-1))
	case key.Matches(msg, k.PageDown):
		v.scroll(max(1, m.logHeight()-1))

	case key.Matches(msg, k.Rollback):
		if w.busy != "" {
			return nil
		}
		p := newPicker(name, w.status.Revision, m.opts.Location)
		m.overlay = p
		return m.loadHistory(w)
	case key.Matches(msg, k.Restart):
		if w.busy == "" {
			m.overlay = &confirm{action{kind: actRestart, workload: name}}
		}
	case key.Matches(msg, k.Delete):
		if w.busy == "" {
			m.overlay = &confirm{action{kind: actDelete, workload: name, release: m.release(w)}}
		}
	case key.Matches(msg, k.Forward):
		return m.toggleForward(w)
	case key.Matches(msg, k.Invoke):
		if w.busy != "" {
			return nil
		}
		w.busy = "invoking…"
		m.setFlash(false, "invoking %s…", name)
		return m.invoke(name)
	}
	return nil
}

func (m *Model) release(w *workload) string {
	if r := m.opts.Releases[w.name]; r != "" {
		return r
	}
	return w.status.Release
}

func (m *Model) currentFilter() string {
	if w := m.current(); w != nil {
		return w.logs.filter
	}
	return ""
}

// handleFilterKey edits the log filter: it applies as typed, enter keeps
// it, esc clears it.
func (m *Model) handleFilterKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "enter":
		m.filtering = false
		m.filter.Blur()
		return nil
	case "esc":
		m.filtering = false
		m.filter.Blur()
		m.filter.SetValue("")
		m.applyFilter("")
		return nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.applyFilter(m.filter.Value())
	return cmd
}

func (m *Model) applyFilter(f string) {
	for _, w := range m.list {
		w.logs.filter = f
	}
}

func (m *Model) selectWorkload(i int) tea.Cmd {
	if len(m.list) == 0 {
		return nil
	}
	i = max(0, min(len(m.list)-1, i))
	if i == m.sel {
		return nil
	}
	m.sel = i
	return m.loadTab()
}

func (m *Model) showTab(t tab) tea.Cmd {
	m.tab = t
	return m.loadTab()
}

// loadTab loads what the shown pane of the selected workload needs and is
// missing.
func (m *Model) loadTab() tea.Cmd {
	w := m.current()
	if w == nil {
		return nil
	}
	switch m.tab {
	case tabEvents:
		return m.loadEvents(w)
	case tabHistory:
		if w.history == nil {
			return m.loadHistory(w)
		}
	}
	return nil
}

func (m *Model) logHeight() int {
	_, _, body := m.layout()
	return body
}

// Commands: each calls the backend once and returns a message.

func (m *Model) subscribeStatuses() tea.Cmd {
	return func() tea.Msg {
		ch, err := m.b.Statuses(m.ctx)
		return statusSubMsg{ch: ch, err: err}
	}
}

func waitStatus(ch <-chan StatusUpdate) tea.Cmd {
	return func() tea.Msg {
		u, ok := <-ch
		if !ok {
			return nil
		}
		return statusMsg{StatusUpdate: u, ch: ch}
	}
}

func (m *Model) subscribeServing() tea.Cmd {
	return func() tea.Msg {
		ch, err := m.b.Serving(m.ctx)
		return servingSubMsg{ch: ch, err: err}
	}
}

func waitServing(ch <-chan ServingUpdate) tea.Cmd {
	return func() tea.Msg {
		u, ok := <-ch
		if !ok {
			return nil
		}
		return servingMsg{ServingUpdate: u, ch: ch}
	}
}

func (m *Model) subscribeLogs(name string) tea.Cmd {
	return func() tea.Msg {
		ch, err := m.b.Logs(m.ctx, name)
		return logSubMsg{workload: name, ch: ch, err: err}
	}
}

// waitLogs waits for a log line, then takes every line already waiting
// (up to maxBatch) so a flood of lines costs one Update and one render.
func waitLogs(name string, ch <-chan engine.LogLine) tea.Cmd {
	return func() tea.Msg {
		l, ok := <-ch
		if !ok {
			return nil
		}
		batch := []engine.LogLine{l}
		for len(batch) < maxBatch {
			select {
			case l, ok := <-ch:
				if !ok {
					return logBatchMsg{workload: name, lines: batch}
				}
				batch = append(batch, l)
			default:
				return logBatchMsg{workload: name, lines: batch, ch: ch}
			}
		}
		return logBatchMsg{workload: name, lines: batch, ch: ch}
	}
}

func (m *Model) subscribeActivity() tea.Cmd {
	return func() tea.Msg {
		ch, err := m.b.Activity(m.ctx)
		return activitySubMsg{ch: ch, err: err}
	}
}

// waitActivity waits for the next event of the actions (nil: there are
// none to follow). The channel is the session's, which stays open: the
// wait ends with the dashboard's context too.
func (m *Model) waitActivity(ch <-chan event.Event) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case ev := <-ch:
			return activityMsg{ev: ev, ch: ch}
		case <-m.ctx.Done():
			return nil
		}
	}
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(refreshEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *Model) loadEvents(w *workload) tea.Cmd {
	if w == nil || !startLoading(&w.events) {
		return nil
	}
	name := w.name
	return func() tea.Msg {
		ev, err := m.b.Events(m.ctx, name)
		return eventsMsg{workload: name, events: ev, err: err}
	}
}

func (m *Model) loadHistory(w *workload) tea.Cmd {
	if w == nil || !startLoading(&w.history) {
		return nil
	}
	name := w.name
	return func() tea.Msg {
		revs, err := m.b.History(m.ctx, name)
		return historyMsg{workload: name, revs: revs, err: err}
	}
}

func (m *Model) run(a action) tea.Cmd {
	if w := m.byName[a.workload]; w != nil {
		w.busy, w.step = a.progress(), ""
	}
	m.setFlash(false, "%s", a.progress())
	return func() tea.Msg {
		var err error
		var now int
		switch a.kind {
		case actRollback:
			now, err = m.b.Rollback(m.ctx, a.workload, a.revision)
		case actRestart:
			err = m.b.Restart(m.ctx, a.workload)
		case actDelete:
			err = m.b.Delete(m.ctx, a.workload)
		}
		return actionDoneMsg{action: a, now: now, err: err}
	}
}

func (m *Model) toggleForward(w *workload) tea.Cmd {
	if w.busy != "" {
		return nil
	}
	name := w.name
	if w.forward != "" {
		w.busy = "stopping the port-forward…"
		return func() tea.Msg {
			return forwardMsg{workload: name, err: m.b.StopPortForward(m.ctx, name)}
		}
	}
	w.busy = "starting a port-forward…"
	m.setFlash(false, "starting a port-forward to %s…", name)
	return func() tea.Msg {
		addr, err := m.b.StartPortForward(m.ctx, name)
		return forwardMsg{workload: name, addr: addr, err: err}
	}
}

func (m *Model) invoke(name string) tea.Cmd {
	return func() tea.Msg {
		resp, err := m.b.Invoke(m.ctx, name)
		return invokeMsg{workload: name, resp: resp, err: err}
	}
}
