package tui

import (
	"hash/fnv"

	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"

	"github.com/skiffdev/skiff/internal/engine"
)

// styles are the dashboard's colors. Without color (NO_COLOR, --no-color,
// tests) they draw no escape code at all, only the layout, and every state
// still has its own symbol.
//
// The colors are the terminal's own 16 (its theme maps them), except where
// the usual ones read badly on a light background: yellow text and the
// bright pod colors. Those change once the terminal says its background is
// light (the dashboard asks it when colors are on).
type styles struct {
	title, header, selected, dim, key, tabOn, tabOff, rule lipgloss.Style
	ok, warn, bad, info                                    lipgloss.Style
	logTime                                                lipgloss.Style
	box                                                    lipgloss.Style
	pods                                                   []lipgloss.Style
	colors                                                 bool
}

// newStyles returns the styles with colors or without; light picks the
// colors for a light background.
func newStyles(colors, light bool) *styles {
	plain := lipgloss.NewStyle()
	s := &styles{colors: colors, box: plain.Border(lipgloss.RoundedBorder()).Padding(0, 1), pods: []lipgloss.Style{plain}}
	if !colors {
		s.title, s.header, s.selected, s.dim, s.key, s.tabOn, s.tabOff, s.rule = plain, plain, plain, plain, plain, plain, plain, plain
		s.ok, s.warn, s.bad, s.info, s.logTime = plain, plain, plain, plain, plain
		return s
	}
	c := lipgloss.Color
	yellow := "3"
	pods := []string{"2", "3", "4", "5", "6", "10", "11", "12", "13", "14"}
	if light {
		// xterm-256 colors, which the program brings down to what the
		// terminal shows: a dark yellow, and darker pod colors.
		yellow = "136"
		pods = []string{"2", "136", "4", "5", "6", "22", "94", "25", "90", "30"}
	}
	s.title = plain.Bold(true)
	s.header = plain.Bold(true)
	s.selected = plain.Bold(true).Reverse(true)
	s.dim = plain.Foreground(c("8"))
	s.key = plain.Bold(true).Foreground(c("6"))
	s.tabOn = plain.Bold(true).Underline(true)
	s.tabOff = plain.Foreground(c("8"))
	s.rule = plain.Foreground(c("8"))
	s.ok = plain.Foreground(c("2"))
	s.warn = plain.Foreground(c(yellow))
	s.bad = plain.Foreground(c("1")).Bold(true)
	s.info = plain.Foreground(c("4"))
	s.logTime = plain.Foreground(c("8"))
	s.box = s.box.BorderForeground(c("6"))
	s.pods = nil
	for _, col := range pods {
		s.pods = append(s.pods, plain.Foreground(c(col)))
	}
	return s
}

// input is the look of the log filter's input: its placeholder dim, its
// cursor a block that does not blink (the model keeps no timer for it).
func (s *styles) input() textinput.Styles {
	state := textinput.StyleState{Placeholder: s.dim}
	is := textinput.Styles{Focused: state, Blurred: state}
	if s.colors {
		is.Cursor.Color = lipgloss.Color("6")
	}
	return is
}

// pod is the stable color of a pod.
func (s *styles) pod(name string) lipgloss.Style {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return s.pods[h.Sum32()%uint32(len(s.pods))]
}

// state renders a workload state with its symbol and color.
func (s *styles) state(state string) string {
	switch state {
	case engine.StateReady:
		return s.ok.Render("● " + state)
	case engine.StateProgressing:
		return s.warn.Render("◐ " + state)
	case engine.StateDegraded:
		return s.bad.Render("▲ " + state)
	case engine.StateFailed:
		return s.bad.Render("✗ " + state)
	case "":
		return s.dim.Render("… loading")
	default:
		return s.dim.Render("○ " + state)
	}
}
