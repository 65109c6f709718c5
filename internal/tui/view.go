package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/target"
)

// layout splits the height: title, table header, listRows workload rows,
// tab bar, body rows, message row, footer.
func (m *Model) layout() (listRows, listStart, body int) {
	n := max(1, len(m.names))
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

type columns struct{ name, kind, state, events, rev, ready, rst, image, age, endpoint int }

func (m *Model) columns() columns {
	c := columns{name: len("WORKLOAD") + 1, kind: 9, state: 14, rev: 4, ready: 6, rst: 4, image: 13, age: 5}
	if m.width < 100 {
		c.image = 8
	}
	for _, s := range m.status {
		if s.Events != nil {
			c.events = 15 // "lag 9999 dlq 99"
		}
	}
	for _, n := range m.names {
		c.name = max(c.name, len(n)+1)
	}
	c.name = min(c.name, 20)
	used := 2 + c.name + c.kind + c.state + c.events + c.rev + c.ready + c.rst + c.image + c.age
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
func eventsCell(l *target.EventLag) string {
	if l == nil {
		return ""
	}
	if l.DeadLetters > 0 {
		return fmt.Sprintf("lag %d dlq %d", l.Lag, l.DeadLetters)
	}
	return fmt.Sprintf("lag %d", l.Lag)
}

func (c columns) row(mark, name, kind, state, events, rev, ready, rst, image, age, endpoint string) string {
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
	out := []string{m.st.header.Render(c.row("", "WORKLOAD", "KIND", "STATE", "EVENTS", "REV", "READY", "RST", "IMAGE", "AGE", "ENDPOINT"))}
	if len(m.names) == 0 {
		return append(out, m.st.dim.Render("  no workloads; add one with `skiff add`"))
	}
	for i := start; i < len(m.names) && i < start+rows; i++ {
		name := m.names[i]
		s, ok := m.status[name]
		mark := "  "
		if i == m.sel {
			mark = "▸ "
		}
		state, rev, ready, rst, image, age, endpoint := "", "", "", "", "", "", ""
		if ok {
			state = s.State
			if s.Revision > 0 {
				rev = fmt.Sprint(s.Revision)
			}
			if s.State != target.StateNotDeployed {
				ready = fmt.Sprintf("%d/%d", s.Ready, s.Desired)
				rst = fmt.Sprint(s.Restarts)
				image = shortDigest(s.Image)[:min(len(shortDigest(s.Image)), max(0, c.image-1))]
				age = m.age(s.Updated)
				endpoint = shortEndpoint(s.Endpoint)
			}
		}
		if addr := m.forwards[name]; addr != "" {
			endpoint = "⇄ " + addr
		}
		row := c.row(mark, name, m.kinds[name], m.st.state(state), eventsCell(s.Events), rev, ready, rst, image, age, endpoint)
		if i == m.sel {
			row = m.st.title.Render(row)
		}
		out = append(out, row)
	}
	return out
}

// shortDigest returns the first 12 hex digits of an image's digest, or
// its tag when it has no digest.
func shortDigest(ref string) string {
	if _, short, ok := deploy.ShortDigest(ref); ok {
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
	name := m.selected()
	if name == "" {
		return ""
	}
	parts := []string{m.st.title.Render(name)}
	switch m.tab {
	case tabLogs:
		v := m.logs[name]
		if v.follow {
			parts = append(parts, "following")
		} else if n := v.newer(); n > 0 {
			parts = append(parts, m.st.warn.Render(fmt.Sprintf("paused, %d new", n)))
		} else {
			parts = append(parts, m.st.warn.Render("paused"))
		}
		if v.filter != "" {
			parts = append(parts, fmt.Sprintf("filter %q", v.filter))
		}
		if v.wrap {
			parts = append(parts, "wrap")
		}
	case tabEvents:
		if e := m.events[name]; e != nil && !e.at.IsZero() {
			parts = append(parts, "at "+e.at.In(m.opts.Location).Format("15:04:05"))
		}
	case tabHistory:
		if s, ok := m.status[name]; ok && s.Revision > 0 {
			parts = append(parts, fmt.Sprintf("revision %d", s.Revision))
		}
	}
	return strings.Join(parts, " · ")
}

func (m *Model) body(h int) []string {
	name := m.selected()
	if name == "" || h <= 0 {
		return nil
	}
	switch m.tab {
	case tabEvents:
		return m.eventLines(name, h)
	case tabHistory:
		return m.historyLines(name, h)
	}
	v := m.logs[name]
	if v.lines.len() == 0 {
		return []string{m.st.dim.Render("  waiting for log lines of " + name + "…")}
	}
	rows := v.render(m.width, h, m.st, m.opts.Location)
	if len(rows) == 0 && v.filter != "" {
		return []string{m.st.dim.Render(fmt.Sprintf("  no line matches %q", v.filter))}
	}
	// Keep the newest line at the bottom of the pane.
	if len(rows) < h {
		rows = append(make([]string, h-len(rows)), rows...)
	}
	return rows
}

func (m *Model) eventLines(name string, h int) []string {
	e := m.events[name]
	switch {
	case e == nil || (e.loading && e.at.IsZero()):
		return []string{m.st.dim.Render("  loading events…")}
	case e.err != nil:
		return []string{m.st.bad.Render("  " + e.err.Error())}
	case len(e.items) == 0:
		return []string{m.st.dim.Render("  no recent events for " + name)}
	}
	// Newest at the bottom; on a narrow screen each event takes two rows,
	// the message under its heading.
	twoRows := m.width < 110
	var out []string
	for i := len(e.items) - 1; i >= 0 && len(out) < h; i-- {
		ev := e.items[i]
		typ := m.st.dim.Render(pad(ev.Type, 8))
		if ev.Type == "Warning" {
			typ = m.st.warn.Render(pad(ev.Type, 8))
		}
		count := ""
		if ev.Count > 1 {
			count = fmt.Sprintf(" ×%d", ev.Count)
		}
		head := fmt.Sprintf("%s %s%s %s", m.st.logTime.Render(ev.Time.In(m.opts.Location).Format("15:04:05")), typ,
			pad(ev.Reason+count, 20), m.st.info.Render(shortObject(ev.Object)))
		if !twoRows {
			out = append(out, pad(head, 8+1+8+20+1+24)+" "+ev.Message)
			continue
		}
		out = append(out, "    "+m.st.dim.Render(ev.Message), head)
	}
	out = out[:min(len(out), h)]
	slices.Reverse(out)
	return out
}

// shortObject shortens pod/orders-7d9f8c6b5-x2lpq to pod/…-x2lpq.
func shortObject(o string) string {
	kind, name, ok := strings.Cut(o, "/")
	if !ok || len(name) <= 20 {
		return o
	}
	return kind + "/…-" + podSuffix(name)
}

func (m *Model) historyLines(name string, h int) []string {
	hs := m.history[name]
	switch {
	case hs == nil || (hs.loading && hs.at.IsZero()):
		return []string{m.st.dim.Render("  loading the release history…")}
	case hs.err != nil:
		return []string{m.st.bad.Render("  " + hs.err.Error())}
	case len(hs.items) == 0:
		return []string{m.st.dim.Render("  no release history")}
	}
	cur := m.status[name].Revision
	out := []string{m.st.header.Render("  REV  UPDATED         STATUS      IMAGE         DESCRIPTION")}
	for i := len(hs.items) - 1; i >= 0 && len(out) < h; i-- {
		r := hs.items[i]
		mark := "  "
		if r.Revision == cur {
			mark = "* "
		}
		status := pad(r.Status, 12)
		switch r.Status {
		case "deployed":
			status = m.st.ok.Render(status)
		case "failed":
			status = m.st.bad.Render(status)
		}
		out = append(out, fmt.Sprintf("%s%3d  %s  %s%s %s", mark, r.Revision, r.Updated.In(m.opts.Location).Format("2006-01-02 15:04"),
			status, pad(shortDigest(r.Image), 13), r.Description))
	}
	return out
}

func (m *Model) messageLine() string {
	if m.filtering {
		return m.filter.View()
	}
	switch {
	case m.flash != "" && m.flashBad:
		return m.st.bad.Render("✗ " + m.flash)
	case m.busy[m.selected()] != "":
		return m.st.warn.Render(m.busy[m.selected()])
	case m.flash != "":
		return m.st.ok.Render(m.flash)
	case m.statErr != nil:
		return m.st.bad.Render("✗ " + m.statErr.Error())
	}
	if s, ok := m.status[m.selected()]; ok && len(s.Problems) > 0 {
		first, _, _ := strings.Cut(s.Problems[0].String(), "\n")
		return m.st.warn.Render(first)
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
