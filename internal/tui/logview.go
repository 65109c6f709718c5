package tui

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/engine"
)

// DefaultLogLines is how many log lines the dashboard keeps per workload.
const DefaultLogLines = 5000

// logLine is one stored line, already made safe to print.
type logLine struct {
	time time.Time
	pod  string
	msg  string
}

// ring keeps the last cap lines appended. Lines are numbered from 0 in
// the order they came (seq); the ring holds seq first() .. next()-1.
type ring struct {
	buf  []logLine
	size int
	n    int64 // lines appended so far
}

func newRing(size int) *ring {
	if size <= 0 {
		size = DefaultLogLines
	}
	return &ring{size: size}
}

func (r *ring) push(l logLine) {
	if len(r.buf) < r.size {
		r.buf = append(r.buf, l)
	} else {
		r.buf[r.n%int64(r.size)] = l
	}
	r.n++
}

func (r *ring) first() int64 { return max(0, r.n-int64(r.size)) }
func (r *ring) next() int64  { return r.n }
func (r *ring) len() int     { return len(r.buf) }

func (r *ring) at(seq int64) *logLine { return &r.buf[seq%int64(r.size)] }

// logView is the log pane of one workload: a ring of lines and how they
// are shown (following the end or held at a line, filtered, wrapped).
type logView struct {
	lines  *ring
	follow bool
	bottom int64 // seq of the last line shown when not following
	filter string
	wrap   bool
}

func newLogView(size int) *logView {
	return &logView{lines: newRing(size), follow: true}
}

// add stores lines, stripping terminal escapes so a pod cannot drive the
// terminal.
func (v *logView) add(lines []engine.LogLine) {
	for _, l := range lines {
		v.lines.push(logLine{time: l.Time, pod: l.Pod, msg: sanitize(l.Message)})
	}
	if !v.follow && v.bottom < v.lines.first() {
		v.bottom = v.lines.first()
	}
}

func sanitize(s string) string {
	if !strings.ContainsAny(s, "\x1b\t\r\x00\x07\x08\x7f") && utf8.ValidString(s) {
		return s
	}
	s = ansi.Strip(strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.ReplaceAll(s, "\t", "    ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// last is the seq of the newest line shown.
func (v *logView) last() int64 {
	if v.follow {
		return v.lines.next() - 1
	}
	return v.bottom
}

func (v *logView) matches(l *logLine) bool {
	return v.filter == "" || containsFold(l.msg, v.filter) || containsFold(l.pod, v.filter)
}

// containsFold reports whether sub is in s, ignoring ASCII case, without
// allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

// pause holds the view at the newest line; resume follows the end again.
func (v *logView) pause() {
	if v.follow {
		v.follow, v.bottom = false, v.lines.next()-1
	}
}

func (v *logView) resume() { v.follow = true }

// newer counts the lines that came after the last one shown.
func (v *logView) newer() int64 {
	if v.follow {
		return 0
	}
	return v.lines.next() - 1 - v.bottom
}

// scroll moves the bottom of the view by n matching lines (negative: up).
// Scrolling holds the view.
func (v *logView) scroll(n int) {
	if v.lines.len() == 0 {
		return
	}
	v.pause()
	first, end := v.lines.first(), v.lines.next()-1
	seq := v.bottom
	for n < 0 && seq > first {
		seq--
		if v.matches(v.lines.at(seq)) {
			n++
			v.bottom = seq
		}
	}
	for n > 0 && seq < end {
		seq++
		if v.matches(v.lines.at(seq)) {
			n--
			v.bottom = seq
		}
	}
}

// top holds the view at the oldest line kept.
func (v *logView) top() {
	v.pause()
	v.bottom = v.lines.first()
}

// render returns at most height rows of at most width cells, the newest
// at the bottom.
func (v *logView) render(width, height int, st *styles, loc *time.Location) []string {
	if height <= 0 || width <= 0 {
		return nil
	}
	rows := make([]string, 0, height)
	first := v.lines.first()
	for seq := v.last(); seq >= first && len(rows) < height; seq-- {
		l := v.lines.at(seq)
		if !v.matches(l) {
			continue
		}
		rows = append(rows, v.format(l, width, height-len(rows), st, loc)...)
	}
	// rows were built newest first; each line's own rows in order, last
	// first.
	out := make([]string, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = r
	}
	return out
}

// format returns the rows of one line in reverse order (last row first),
// at most max of them.
func (v *logView) format(l *logLine, width, limit int, st *styles, loc *time.Location) []string {
	prefix := st.logTime.Render(l.time.In(loc).Format("15:04:05")) + " " + st.pod(l.pod).Render(podSuffix(l.pod)) + " "
	pw := ansi.StringWidth(prefix)
	if !v.wrap || width <= pw+8 {
		return []string{ansi.Truncate(prefix+l.msg, width, "…")}
	}
	wrapped := strings.Split(ansi.Hardwrap(l.msg, width-pw, true), "\n")
	out := make([]string, 0, min(len(wrapped), limit))
	indent := strings.Repeat(" ", pw)
	for i := len(wrapped) - 1; i >= 0 && len(out) < limit; i-- {
		p := indent
		if i == 0 {
			p = prefix
		}
		out = append(out, p+wrapped[i])
	}
	return out
}

// podSuffix shortens orders-7d9f8c6b5-x2lpq to x2lpq: what tells the pods
// of one workload apart.
func podSuffix(pod string) string {
	if i := strings.LastIndexByte(pod, '-'); i >= 0 && i < len(pod)-1 {
		return pod[i+1:]
	}
	if len(pod) > 5 {
		return pod[len(pod)-5:]
	}
	return pod
}
