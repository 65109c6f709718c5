package tui

import (
	"hash/fnv"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/skiffdev/skiff/internal/target"
)

// styles are the dashboard's colors. Built on a renderer without colors
// (NO_COLOR, --no-color, tests) they only keep bold and the layout, and
// every state still has its own symbol.
type styles struct {
	title, header, selected, dim, key, tabOn, tabOff, rule lipgloss.Style
	ok, warn, bad, info                                    lipgloss.Style
	logTime                                                lipgloss.Style
	box                                                    lipgloss.Style
	pods                                                   []lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) *styles {
	if r == nil {
		r = lipgloss.NewRenderer(nil)
		r.SetColorProfile(termenv.Ascii)
	}
	c := func(s string) lipgloss.Color { return lipgloss.Color(s) }
	s := &styles{
		title:    r.NewStyle().Bold(true),
		header:   r.NewStyle().Bold(true),
		selected: r.NewStyle().Bold(true).Reverse(true),
		dim:      r.NewStyle().Foreground(c("8")),
		key:      r.NewStyle().Bold(true).Foreground(c("6")),
		tabOn:    r.NewStyle().Bold(true).Underline(true),
		tabOff:   r.NewStyle().Foreground(c("8")),
		rule:     r.NewStyle().Foreground(c("8")),
		ok:       r.NewStyle().Foreground(c("2")),
		warn:     r.NewStyle().Foreground(c("3")),
		bad:      r.NewStyle().Foreground(c("1")).Bold(true),
		info:     r.NewStyle().Foreground(c("4")),
		logTime:  r.NewStyle().Foreground(c("8")),
		box:      r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(c("6")).Padding(0, 1),
	}
	for _, col := range []string{"2", "3", "4", "5", "6", "10", "11", "12", "13", "14"} {
		s.pods = append(s.pods, r.NewStyle().Foreground(c(col)))
	}
	return s
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
	case target.StateReady:
		return s.ok.Render("● " + state)
	case target.StateProgressing:
		return s.warn.Render("◐ " + state)
	case target.StateDegraded:
		return s.bad.Render("▲ " + state)
	case target.StateFailed:
		return s.bad.Render("✗ " + state)
	case "":
		return s.dim.Render("… loading")
	default:
		return s.dim.Render("○ " + state)
	}
}
