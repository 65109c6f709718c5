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

// overlay is a box drawn over the dashboard that takes the keys while it
// is open: help, the revision picker, a confirmation, a response.
type overlay interface {
	// update handles a key; it returns the overlay to show next (nil
	// closes it) and a command.
	update(msg tea.KeyPressMsg) (overlay, tea.Cmd)
	// view renders the content of the box, at most width cells wide.
	view(width, height int, st *styles) string
}

func msgCmd(msg tea.Msg) tea.Cmd { return func() tea.Msg { return msg } }

func isKey(msg tea.KeyPressMsg, keys ...string) bool {
	return key.Matches(msg, key.NewBinding(key.WithKeys(keys...)))
}

type actionKind int

const (
	actRollback actionKind = iota
	actRestart
	actDelete
)

// action is a change to a workload that needs a confirmation.
type action struct {
	kind     actionKind
	workload string
	revision int // rollback target
	release  string
}

func (a action) question() string {
	switch a.kind {
	case actRollback:
		return fmt.Sprintf("Roll %s back to revision %d?\nHelm records the rollback as a new revision.", a.workload, a.revision)
	case actRestart:
		return fmt.Sprintf("Restart the pods of %s?\nThey are replaced one by one, as a rollout does.", a.workload)
	default:
		return fmt.Sprintf("Delete %s?\nThis uninstalls release %s and every object it created, and removes its\ntriggers' consumers and the Secret of its values, as `skiff delete` does.", a.workload, a.release)
	}
}

func (a action) progress() string {
	switch a.kind {
	case actRollback:
		return fmt.Sprintf("Rolling %s back to revision %d…", a.workload, a.revision)
	case actRestart:
		return fmt.Sprintf("Restarting %s…", a.workload)
	default:
		return fmt.Sprintf("Deleting %s…", a.workload)
	}
}

// confirmedMsg says the user said yes to an action.
type confirmedMsg struct{ action }

// confirm asks yes or no about an action.
type confirm struct{ action }

func (c *confirm) update(msg tea.KeyPressMsg) (overlay, tea.Cmd) {
	switch {
	case isKey(msg, "y", "Y", "enter"):
		return nil, msgCmd(confirmedMsg{c.action})
	case isKey(msg, "n", "N", "esc", "q"):
		return nil, nil
	}
	return c, nil
}

func (c *confirm) view(width, _ int, st *styles) string {
	return st.title.Render("Confirm") + "\n\n" + wrapText(c.question(), width) + "\n\n" +
		st.key.Render("y") + " yes   " + st.key.Render("n/esc") + " no"
}

// pickedMsg says the user chose a revision to roll back to.
type pickedMsg struct {
	workload string
	revision int
}

// picker lets the user choose the revision to roll back to.
type picker struct {
	workload string
	revs     []engine.Revision // newest first
	current  int
	cursor   int
	loading  bool
	err      error
	loc      *time.Location
}

func newPicker(workload string, current int, loc *time.Location) *picker {
	return &picker{workload: workload, current: current, loading: true, loc: loc}
}

// setHistory fills the picker, the cursor on the revision before the
// current one.
func (p *picker) setHistory(revs []engine.Revision, err error) {
	p.loading, p.err = false, err
	p.revs = p.revs[:0]
	for i := len(revs) - 1; i >= 0; i-- {
		p.revs = append(p.revs, revs[i])
	}
	p.cursor = 0
	for i, r := range p.revs {
		if r.Revision != p.current {
			p.cursor = i
			break
		}
	}
}

func (p *picker) update(msg tea.KeyPressMsg) (overlay, tea.Cmd) {
	switch {
	case isKey(msg, "esc", "q"):
		return nil, nil
	case isKey(msg, "up", "k"):
		p.cursor = max(0, p.cursor-1)
	case isKey(msg, "down", "j"):
		p.cursor = min(len(p.revs)-1, p.cursor+1)
	case isKey(msg, "enter"):
		if len(p.revs) == 0 {
			return p, nil
		}
		r := p.revs[p.cursor]
		if r.Revision == p.current {
			return p, nil
		}
		return nil, msgCmd(pickedMsg{workload: p.workload, revision: r.Revision})
	}
	return p, nil
}

func (p *picker) view(width, height int, st *styles) string {
	var b strings.Builder
	b.WriteString(st.title.Render("Roll "+p.workload+" back to") + "\n\n")
	switch {
	case p.loading:
		b.WriteString("loading the release history…\n")
	case p.err != nil:
		b.WriteString(st.bad.Render(wrapText(p.err.Error(), width)) + "\n")
	case len(p.revs) < 2:
		b.WriteString("there is no earlier revision to roll back to\n")
	default:
		rows := max(1, height-6)
		start := max(0, min(p.cursor-rows/2, len(p.revs)-rows))
		for i := start; i < len(p.revs) && i < start+rows; i++ {
			r := p.revs[i]
			mark := "  "
			if i == p.cursor {
				mark = "▸ "
			}
			line := fmt.Sprintf("%s%3d  %-10s %s  %s", mark, r.Revision, r.Status, shortDigest(r.Image), r.Updated.In(p.loc).Format("01-02 15:04"))
			if r.Revision == p.current {
				line += " (current)"
			}
			line = ansi.Truncate(line, width, "…")
			if i == p.cursor {
				line = st.selected.Render(line)
			}
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\n" + st.key.Render("↑/↓") + " choose  " + st.key.Render("enter") + " roll back  " + st.key.Render("esc") + " cancel")
	return b.String()
}

// responseBox shows what an invocation returned.
type responseBox struct {
	workload string
	resp     *Response
	err      error
}

func (r *responseBox) update(msg tea.KeyPressMsg) (overlay, tea.Cmd) {
	if isKey(msg, "esc", "enter", "q", "i") {
		return nil, nil
	}
	return r, nil
}

func (r *responseBox) view(width, height int, st *styles) string {
	var b strings.Builder
	b.WriteString(st.title.Render("Invoke "+r.workload) + "\n\n")
	if r.err != nil {
		b.WriteString(st.bad.Render(wrapText(r.err.Error(), width)))
	} else {
		status := st.ok
		if r.resp.Code >= 400 {
			status = st.bad
		}
		b.WriteString("GET " + r.resp.URL + "\n")
		b.WriteString(status.Render(r.resp.Status) + st.dim.Render(fmt.Sprintf("  in %s", r.resp.Duration.Round(1e6))) + "\n\n")
		lines := strings.Split(wrapText(sanitizeBody(r.resp.Body), width), "\n")
		if max(1, height-7) < len(lines) {
			lines = append(lines[:max(1, height-8)], st.dim.Render("…"))
		}
		b.WriteString(strings.Join(lines, "\n"))
	}
	b.WriteString("\n\n" + st.key.Render("esc") + " close")
	return b.String()
}

func sanitizeBody(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = sanitize(l)
	}
	return strings.Join(lines, "\n")
}

// helpBox lists every key.
type helpBox struct{ keys keyMap }

func (h *helpBox) update(msg tea.KeyPressMsg) (overlay, tea.Cmd) {
	if isKey(msg, "esc", "?", "q", "enter") {
		return nil, nil
	}
	return h, nil
}

func (h *helpBox) view(width, _ int, st *styles) string {
	groups := h.keys.helpGroups()
	col := func(gs ...int) string {
		var b strings.Builder
		for n, i := range gs {
			if n > 0 {
				b.WriteString("\n")
			}
			b.WriteString(st.header.Render(groups[i].title) + "\n")
			for _, k := range groups[i].keys {
				fmt.Fprintf(&b, "%s %s\n", st.key.Render(fmt.Sprintf("%-6s", k.Help().Key)), k.Help().Desc)
			}
		}
		return strings.TrimRight(b.String(), "\n")
	}
	left, right := col(0), col(1, 2)
	body := lipgloss.JoinHorizontal(lipgloss.Top, left, "    ", right)
	if lipgloss.Width(body) > width {
		body = left + "\n\n" + right
	}
	return st.title.Render("skiff dash keys") + "\n\n" + body + "\n\n" + st.key.Render("esc") + " close"
}

// wrapText wraps s at width cells, on words where it can.
func wrapText(s string, width int) string {
	if width <= 0 {
		return s
	}
	return ansi.Wrap(s, width, " -/")
}
