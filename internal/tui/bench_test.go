package tui

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/skiffdev/skiff/internal/engine"
)

// BenchmarkLogThroughput feeds log lines of three workloads into the model
// the way the program does: each workload's waitLogs command runs in its
// own goroutine, its message goes through Update, and the screen is
// rendered (View) after every Update. b.N is the number of lines.
//
//   - flood: producers as fast as they can; lines/s is what the model can
//     take.
//   - flood-filter: the same with a log filter that matches 1 line in 100,
//     so each frame scans the ring buffer.
//   - paced-10k: 10,000 lines/s in total, sent every 10ms; max-lag-ms is the
//     longest a line waited before it was on screen.
//
// MiB-heap is runtime.MemStats.HeapInuse after a GC at the end, with the
// default ring of DefaultLogLines lines per workload full.
func BenchmarkLogThroughput(b *testing.B) {
	for _, bc := range []struct {
		name   string
		filter string
		rate   int // lines/s in total; 0 for as fast as possible
	}{
		{"flood", "", 0},
		{"flood-filter", "status=503", 0},
		{"paced-10k", "", 10000},
	} {
		b.Run(bc.name, func(b *testing.B) { benchLogs(b, bc.filter, bc.rate) })
	}
}

func benchLogs(b *testing.B, filter string, rate int) {
	names := []string{"orders", "payments", "thumbnail"}
	var ws []Workload
	for _, n := range names {
		ws = append(ws, Workload{Name: n, Kind: "service"})
	}
	m := New(context.Background(), newFakeBackend(), Options{Workloads: ws, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Update(statusMsg{StatusUpdate: StatusUpdate{Statuses: fixtureStatuses()[:3]}})
	m.applyFilter(filter)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()

	per := max(1, b.N/len(names))
	total := per * len(names)
	msgs := make(chan tea.Msg, 16)
	exec := func(cmd tea.Cmd) {
		if cmd == nil {
			return
		}
		go func() {
			if msg := cmd(); msg != nil {
				msgs <- msg
			}
		}()
	}
	for _, n := range names {
		ch := make(chan engine.LogLine, 4096) // as the cluster backend's
		go produce(ch, n, per, rate/len(names))
		exec(waitLogs(n, ch))
	}
	var maxLag time.Duration
	for seen := 0; seen < total; {
		msg := <-msgs
		_, cmd := m.Update(msg)
		_ = m.frame()
		if lb, ok := msg.(logBatchMsg); ok {
			seen += len(lb.lines)
			if lag := time.Since(lb.lines[len(lb.lines)-1].Time); lag > maxLag {
				maxLag = lag
			}
		}
		exec(cmd)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
	if rate > 0 {
		b.ReportMetric(float64(maxLag.Microseconds())/1000, "max-lag-ms")
	}
	b.ReportMetric(0, "ns/op") // lines/s says it better
	for _, n := range names {
		if l := m.byName[n].logs.lines.len(); l > DefaultLogLines {
			b.Fatalf("%s keeps %d lines, more than the ring's %d", n, l, DefaultLogLines)
		}
	}
}

// produce sends n lines of a busy JSON-logging service to ch, at rate
// lines/s (every 10ms) or as fast as possible when rate is 0, then closes
// ch.
func produce(ch chan<- engine.LogLine, workload string, n, rate int) {
	defer close(ch)
	pods := []string{workload + "-7d9f8c6b5-x2lpq", workload + "-7d9f8c6b5-m4kzt"}
	line := func(i int) engine.LogLine {
		status := 200
		if i%100 == 99 {
			status = 503
		}
		return engine.LogLine{Time: time.Now(), Workload: workload, Pod: pods[i%2], Container: workload,
			Message: fmt.Sprintf(`{"level":"info","msg":"handled request","method":"GET","path":"/%s/%d","status=%d","duration_ms":%d.%d,"trace":"%016x"}`,
				workload, i, status, i%40, i%10, uint64(i)*2654435761)}
	}
	if rate <= 0 {
		for i := 0; i < n; i++ {
			ch <- line(i)
		}
		return
	}
	perTick := max(1, rate/100)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for i := 0; i < n; {
		<-t.C
		for j := 0; j < perTick && i < n; j++ {
			ch <- line(i)
			i++
		}
	}
}
