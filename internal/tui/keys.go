package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key of the dashboard; the footer and the help overlay
// are built from it.
type keyMap struct {
	Up, Down                       key.Binding
	NextTab, PrevTab               key.Binding
	LogsTab, EventsTab, HistoryTab key.Binding
	ServingTab                     key.Binding
	Pause, Filter, Wrap            key.Binding
	End, Top, PageUp, PageDown     key.Binding
	Rollback, Restart, Delete      key.Binding
	Forward, Invoke, Refresh       key.Binding
	Help, Quit                     key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Up:         b([]string{"up", "k"}, "↑/k", "previous workload"),
		Down:       b([]string{"down", "j"}, "↓/j", "next workload"),
		NextTab:    b([]string{"tab", "right", "l"}, "tab", "next pane"),
		PrevTab:    b([]string{"shift+tab", "left", "h"}, "S-tab", "previous pane"),
		LogsTab:    b([]string{"1"}, "1", "logs"),
		EventsTab:  b([]string{"2"}, "2", "events"),
		HistoryTab: b([]string{"3"}, "3", "history"),
		ServingTab: b([]string{"4"}, "4", "how it serves (charts)"),
		Pause:      b([]string{"p", "space"}, "p", "pause/follow logs"),
		Filter:     b([]string{"/"}, "/", "filter logs"),
		Wrap:       b([]string{"w"}, "w", "wrap long lines"),
		End:        b([]string{"G", "end"}, "G", "jump to end, follow"),
		Top:        b([]string{"g", "home"}, "g", "oldest line kept"),
		PageUp:     b([]string{"pgup", "ctrl+u", "ctrl+b"}, "PgUp", "scroll up"),
		PageDown:   b([]string{"pgdown", "ctrl+d", "ctrl+f"}, "PgDn", "scroll down"),
		Rollback:   b([]string{"r"}, "r", "roll back to a revision"),
		Restart:    b([]string{"R"}, "R", "restart pods"),
		Delete:     b([]string{"D"}, "D", "delete (uninstall)"),
		Forward:    b([]string{"f"}, "f", "start/stop port-forward"),
		Invoke:     b([]string{"i"}, "i", "invoke GET /"),
		Refresh:    b([]string{"ctrl+r"}, "C-r", "reload events/history"),
		Help:       b([]string{"?"}, "?", "help"),
		Quit:       b([]string{"q", "ctrl+c"}, "q", "quit"),
	}
}

// helpGroups are the sections of the help overlay.
func (k keyMap) helpGroups() []struct {
	title string
	keys  []key.Binding
} {
	return []struct {
		title string
		keys  []key.Binding
	}{
		{"Navigate", []key.Binding{k.Up, k.Down, k.NextTab, k.PrevTab, k.LogsTab, k.EventsTab, k.HistoryTab, k.ServingTab, k.Help, k.Quit}},
		{"Logs", []key.Binding{k.Pause, k.Filter, k.Wrap, k.End, k.Top, k.PageUp, k.PageDown}},
		{"Actions", []key.Binding{k.Rollback, k.Restart, k.Delete, k.Forward, k.Invoke, k.Refresh}},
	}
}
