package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/engine"
)

// layout splits the height: title, table header, listRows workload rows,
// tab bar, body rows, message row, footer.
func (m *Model) layout() (listRows, listStart, body int) {
	n := max(1, len(m.list))
	listRows = min(n, max(1, (m.height-5)/3))
	if m.sel >= listRows {
		listStart = m.sel - listRows + 1
	}
	body = max(0, m.height-5-listRows)
	return listRows, listStart, body
}

// View draws the screen on the alternate screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.frame())
	v.AltScreen = true
	return v
}

// frame renders the screen: exactly height lines of at most width cells.
func (m *Model) frame() string {
	w := m.width
	if w <= 0 || m.height <= 0 {
		return ""
	}
	listRows, listStart, body := m.layout()
	lines := make([]string, 0, m.height)
	lines = append(lines, m.titleLine())
	lines = append(lines, m.tableLines(listRows, listStart)...)
	lines = append(lines, m.tabBar())
	lines = append(lines, fit(m.body(body), body)...)
	lines = append(lines, m.messageLine(), m.footer())
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "")
	}
	lines = fit(lines, m.height)
	if m.overlay != nil {
		lines = m.drawOverlay(lines)
	}
	return strings.Join(lines, "\n")
}

// fit pads or cuts lines to exactly n.
func fit(lines []string, n int) []string {
	if len(lines) > n {
		return lines[:n]
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	return lines
}

// pad cuts or pads s to exactly w cells.
func pad(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-sw)
}

func padLeft(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw >= w {
		return pad(s, w)
	}
	return strings.Repeat(" ", w-sw) + s
}

func (m *Model) titleLine() string {
	t := m.st.title.Render("skiff dash")
	var parts []string
	if m.opts.Project != "" {
		parts = append(parts, "project "+m.opts.Project)
	}
	if m.opts.Namespace != "" {
		parts = append(parts, "namespace "+m.opts.Namespace)
	}
	if m.opts.Context != "" {
		parts = append(parts, "context "+m.opts.Context)
	}
	if len(parts) > 0 {
		t += m.st.dim.Render(" · " + strings.Join(parts, " · "))
	}
	return t
}

type columns struct {
	name, kind, state, events int
	// rate, p99 and errs are the sparkline columns (0: not shown).
	rate, p99, errs                       int
	rev, ready, rst, image, age, endpoint int
}

// sparkValue is the room for the value after a sparkline.
const sparkValue = 6

func (m *Model) columns() columns {
	c := columns{name: len("WORKLOAD") + 1, kind: 9, state: 14, rev: 4, ready: 6, rst: 4, image: 13, age: 5}
	if m.width < 100 {
		c.image = 8
	}
	sampled := false
	for _, w := range m.list {
		if w.status.Events != nil {
			c.events = 15 // "lag 9999 dlq 99"
		}
		c.name = max(c.name, len(w.name)+1)
		sampled = sampled || len(w.serving.Points) > 0
	}
	c.name = min(c.name, 20)
	if sampled {
		// Once sampled, the request rate's sparkline; on a wide screen,
		// p99's and the errors' too.
		c.rate = 8 + 1 + sparkValue
		if m.width >= 120 {
			c.p99, c.errs = 6+1+sparkValue, 6+1+sparkValue
		}
	}
	used := 2 + c.name + c.kind + c.state + c.events + c.rate + c.p99 + c.errs + c.rev + c.ready + c.rst + c.image + c.age
	c.endpoint = m.width - used
	if c.endpoint < 10 { // make room: the image goes first, then the kind
		c.endpoint += c.image
		c.image = 0
	}
	if c.endpoint < 10 {
		c.endpoint += c.kind
		c.kind = 0
	}
	return c
}

// eventsCell is a workload's backlog on the bus: "lag 3", "lag 0 dlq 1".
func eventsCell(l *engine.EventLag) string {
	if l == nil {
		return ""
	}
	if l.DeadLetters > 0 {
		return fmt.Sprintf("lag %d dlq %d", l.Lag, l.DeadLetters)
	}
	return fmt.Sprintf("lag %d", l.Lag)
}

func (c columns) row(mark, name, kind, state, events string, sparks [3]string, rev, ready, rst, image, age, endpoint string) string {
	var b strings.Builder
	b.WriteString(pad(mark, 2))
	b.WriteString(pad(name, c.name))
	if c.kind > 0 {
		b.WriteString(pad(kind, c.kind))
	}
	b.WriteString(pad(state, c.state))
	if c.events > 0 {
		b.WriteString(pad(events, c.events))
	}
	for i, width := range []int{c.rate, c.p99, c.errs} {
		if width > 0 {
			b.WriteString(pad(sparks[i], width))
		}
	}
	b.WriteString(padLeft(rev, c.rev-1) + " ")
	b.WriteString(padLeft(ready, c.ready-1) + " ")
	b.WriteString(padLeft(rst, c.rst-1) + " ")
	if c.image > 0 {
		b.WriteString(pad(image, c.image))
	}
	b.WriteString(pad(age, c.age))
	b.WriteString(pad(endpoint, max(0, c.endpoint)))
	return strings.TrimRight(b.String(), " ")
}

func (m *Model) tableLines(rows, start int) []string {
	c := m.columns()
	out := []string{m.st.header.Render(c.row("", "WORKLOAD", "KIND", "STATE", "EVENTS", [3]string{"REQ/S", "P99", "ERR/S"}, "REV", "READY", "RST", "IMAGE", "AGE", "ENDPOINT"))}
	if len(m.list) == 0 {
		return append(out, m.st.dim.Render("  no workloads; add one with `skiff add`"))
	}
	for i := start; i < len(m.list) && i < start+rows; i++ {
		out = append(out, m.list[i].row(c, i == m.sel, m.st, m.age))
	}
	return out
}

// shortDigest returns the first 12 hex digits of an image's digest, or
// its tag when it has no digest.
func shortDigest(ref string) string {
	if _, short, ok := engine.ShortDigest(ref); ok {
		return short
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// shortEndpoint turns http://orders.shop.svc.cluster.local:8080 into
// orders.shop:8080, which resolves the same inside the cluster.
func shortEndpoint(u string) string {
	u = strings.TrimPrefix(u, "http://")
	return strings.Replace(u, ".svc.cluster.local", "", 1)
}

func (m *Model) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := m.now().Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func (m *Model) tabBar() string {
	var b strings.Builder
	b.WriteString(m.st.rule.Render("─"))
	for t := tab(0); t < tabCount; t++ {
		label := fmt.Sprintf("%d %s", t+1, t)
		if t == m.tab {
			b.WriteString(m.st.tabOn.Render("[" + label + "]"))
		} else {
			b.WriteString(m.st.tabOff.Render(" " + label + " "))
		}
	}
	info := m.tabInfo()
	if info != "" {
		info = " " + info + " "
	}
	used := ansi.StringWidth(b.String()) + ansi.StringWidth(info)
	if used+2 > m.width {
		info = ansi.Truncate(info, max(0, m.width-ansi.StringWidth(b.String())-2), "… ")
		used = ansi.StringWidth(b.String()) + ansi.StringWidth(info)
	}
	b.WriteString(m.st.rule.Render(strings.Repeat("─", max(1, m.width-used-1))))
	b.WriteString(info)
	b.WriteString(m.st.rule.Render("─"))
	return b.String()
}

func (m *Model) tabInfo() string {
	if w := m.current(); w != nil {
		return w.tabInfo(m.tab, m.st, m.opts.Location)
	}
	return ""
}

func (m *Model) body(h int) []string {
	w := m.current()
	if w == nil || h <= 0 {
		return nil
	}
	if m.tab == tabServing {
		return w.servingLines(m.width, h, m.st, m.now(), m.servingErr)
	}
	return w.body(m.tab, m.width, h, m.st, m.opts.Location)
}

// shortObject shortens pod/orders-7d9f8c6b5-x2lpq to pod/…-x2lpq.
func shortObject(o string) string {
	kind, name, ok := strings.Cut(o, "/")
	if !ok || len(name) <= 20 {
		return o
	}
	return kind + "/…-" + podSuffix(name)
}

func (m *Model) messageLine() string {
	if m.filtering {
		return m.filter.View()
	}
	w := m.current()
	switch {
	case m.flash != "" && m.flashBad:
		return m.st.bad.Render("✗ " + m.flash)
	case w != nil && w.busy != "":
		return m.st.warn.Render(w.progress())
	case m.flash != "":
		return m.st.ok.Render(m.flash)
	case m.statErr != nil:
		return m.st.bad.Render("✗ " + m.statErr.Error())
	case w != nil && w.problem() != "":
		return m.st.warn.Render(w.problem())
	}
	return ""
}

func (m *Model) footer() string {
	var hints []key.Binding
	k := m.keys
	switch {
	case m.filtering:
		return m.hint("enter", "keep filter") + "  " + m.hint("esc", "clear filter") + "  " + m.hint("C-c", "quit")
	case m.overlay != nil:
		return m.hint("esc", "close")
	case m.tab == tabLogs:
		hints = []key.Binding{k.Up, k.NextTab, k.Filter, k.Pause, k.Rollback, k.Restart, k.Delete, k.Forward, k.Invoke, k.Wrap, k.End}
	default:
		hints = []key.Binding{k.Up, k.NextTab, k.Rollback, k.Restart, k.Delete, k.Forward, k.Invoke, k.Refresh}
	}
	tail := m.hint("?", "help") + "  " + m.hint("q", "quit")
	room := m.width - ansi.StringWidth(tail)
	var b strings.Builder
	for _, h := range hints {
		s := m.hint(h.Help().Key, shortDesc(h))
		if ansi.StringWidth(b.String())+ansi.StringWidth(s)+2 > room {
			break
		}
		b.WriteString(s + "  ")
	}
	return b.String() + tail
}

// shortDesc is the footer's word for a key.
func shortDesc(b key.Binding) string {
	switch b.Help().Key {
	case "↑/k":
		return "select"
	case "tab":
		return "pane"
	case "/":
		return "filter"
	case "p":
		return "pause"
	case "w":
		return "wrap"
	case "G":
		return "end"
	case "r":
		return "rollback"
	case "R":
		return "restart"
	case "D":
		return "delete"
	case "f":
		return "forward"
	case "i":
		return "invoke"
	case "C-r":
		return "reload"
	}
	return b.Help().Desc
}

func (m *Model) hint(k, desc string) string {
	return m.st.key.Render(k) + " " + m.st.dim.Render(desc)
}

// drawOverlay draws the open overlay in a box centred over lines.
func (m *Model) drawOverlay(lines []string) []string {
	maxW := max(20, min(m.width-4, 76))
	content := m.overlay.view(maxW-4, m.height-4, m.st)
	box := m.st.box.Render(content)
	boxLines := strings.Split(box, "\n")
	if len(boxLines) > m.height {
		boxLines = boxLines[:m.height]
	}
	bw := lipgloss.Width(box)
	x := max(0, (m.width-bw)/2)
	y := max(0, (m.height-len(boxLines))/2)
	for i, bl := range boxLines {
		row := y + i
		if row >= len(lines) {
			break
		}
		bg := lines[row]
		left := pad(ansi.Truncate(bg, x, ""), x)
		right := ansi.TruncateLeft(bg, x+bw, "")
		lines[row] = ansi.Truncate(left+pad(bl, bw)+right, m.width, "")
	}
	return lines
}
