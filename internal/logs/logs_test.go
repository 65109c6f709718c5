package logs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func runningPod(name string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	return p
}

// script serves scripted log streams: each call of a pod/container gets the
// next chunk; past the end, the stream blocks until cancelled.
type script struct {
	mu    sync.Mutex
	calls map[string]int
	chunk map[string][]string
	opts  map[string][]*corev1.PodLogOptions
}

func (s *script) open(ctx context.Context, _ string, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	key := pod + "/" + o.Container
	n := s.calls[key]
	s.calls[key]++
	s.opts[key] = append(s.opts[key], o)
	chunks := s.chunk[key]
	s.mu.Unlock()
	if n < len(chunks) {
		return io.NopCloser(strings.NewReader(chunks[n])), nil
	}
	pr, pw := io.Pipe()
	go func() { <-ctx.Done(); pw.Close() }()
	return pr, nil
}

func ts(sec, nsec int) string {
	return time.Date(2026, 11, 27, 4, 0, sec, nsec, time.UTC).Format(time.RFC3339Nano)
}

func collectLines(t *testing.T, s *Streamer, opts Options, want int) []Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(chan Line, 100)
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx, opts, out) }()
	var lines []Line
	for len(lines) < want {
		select {
		case l := <-out:
			lines = append(lines, l)
		case <-ctx.Done():
			t.Fatalf("got %d lines, want %d: %+v", len(lines), want, lines)
		}
	}
	// Nothing more may come.
	select {
	case l := <-out:
		t.Fatalf("unexpected extra line %+v", l)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done
	return lines
}

func TestReconnectDoesNotRepeatLines(t *testing.T) {
	cs := fake.NewSimpleClientset(runningPod("web-1", "app"))
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"web-1/app": {
			// The stream drops after three lines, two of them in the same second.
			ts(1, 100) + " one\n" + ts(2, 100) + " two\n" + ts(2, 200) + " three\n",
			// The server resends from the start of second 2 (second precision).
			ts(2, 100) + " two\n" + ts(2, 200) + " three\n" + ts(2, 300) + " four\n" + ts(3, 0) + " five\n",
		},
	}}
	s := &Streamer{Clientset: cs, open: sc.open, Retry: time.Millisecond}
	lines := collectLines(t, s, Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Follow: true, Tail: -1}, 5)
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, l.Message)
		if l.Workload != "web" || l.Pod != "web-1" || l.Container != "app" {
			t.Errorf("line labels: %+v", l)
		}
	}
	if got := strings.Join(msgs, ","); got != "one,two,three,four,five" {
		t.Errorf("lines = %s", got)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if o := sc.opts["web-1/app"]; len(o) < 2 || o[1].SinceTime == nil || !o[1].Timestamps {
		t.Errorf("reconnect options: %+v", o)
	}
}

func TestNewPodsAreFollowedAndDeletedDropped(t *testing.T) {
	cs := fake.NewSimpleClientset(runningPod("web-1", "app"))
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"web-1/app": {ts(1, 0) + " from one\n"},
		"web-2/app": {ts(5, 0) + " from two\n"},
	}}
	s := &Streamer{Clientset: cs, open: sc.open, Retry: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(chan Line, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Stream(ctx, Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Follow: true, Tail: -1}, out)
	}()
	if l := <-out; l.Message != "from one" {
		t.Fatalf("first line %+v", l)
	}
	// A rollout: a new pod appears, the old one goes.
	cs.CoreV1().Pods("ns").Create(ctx, runningPod("web-2", "app"), metav1.CreateOptions{})
	if l := <-out; l.Message != "from two" || l.Pod != "web-2" {
		t.Fatalf("second line %+v", l)
	}
	cs.CoreV1().Pods("ns").Delete(ctx, "web-1", metav1.DeleteOptions{})
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMaxStreams(t *testing.T) {
	var pods []*corev1.Pod
	chunks := map[string][]string{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		pods = append(pods, runningPod(name, "app"))
		chunks[name+"/app"] = []string{ts(i, 0) + " hi from " + name + "\n"}
	}
	cs := fake.NewSimpleClientset(pods[0], pods[1], pods[2])
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: chunks}
	var notices []string
	var mu sync.Mutex
	s := &Streamer{Clientset: cs, open: sc.open, Retry: time.Millisecond}
	lines := collectLines(t, s, Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Follow: true, Tail: -1,
		MaxStreams: 2, Notice: func(s string) { mu.Lock(); notices = append(notices, s); mu.Unlock() }}, 2)
	if len(lines) != 2 {
		t.Fatalf("lines = %+v", lines)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notices) != 1 || !strings.Contains(notices[0], "at most 2 streams") {
		t.Errorf("notices = %q", notices)
	}
}

func TestOnceWithTailAndContainer(t *testing.T) {
	cs := fake.NewSimpleClientset(runningPod("web-1", "app", "sidecar"))
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"web-1/app":     {ts(1, 0) + " app line\n"},
		"web-1/sidecar": {ts(1, 0) + " sidecar line\n"},
	}}
	s := &Streamer{Clientset: cs, open: sc.open}
	out := make(chan Line, 10)
	err := s.Stream(context.Background(), Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}},
		Tail: 10, Since: 90 * time.Second, Container: "app"}, out)
	if err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []string
	for l := range out {
		got = append(got, l.Message)
	}
	if strings.Join(got, ",") != "app line" {
		t.Errorf("lines = %v", got)
	}
	o := sc.opts["web-1/app"][0]
	if *o.TailLines != 10 || o.SinceTime == nil || time.Since(o.SinceTime.Time) < 89*time.Second || o.Follow {
		t.Errorf("options = %+v", o)
	}
}

func TestSplit(t *testing.T) {
	tm, msg := split("2026-11-27T04:00:01.5Z hello world")
	if msg != "hello world" || tm.Nanosecond() != 500000000 {
		t.Errorf("split = %v %q", tm, msg)
	}
	if tm, msg := split("no timestamp here"); !tm.IsZero() || msg != "no timestamp here" {
		t.Errorf("split = %v %q", tm, msg)
	}
}

// A stream that fails before sending any line is reopened with the
// user's --tail and --since, not from the start of the log.
func TestRetryBeforeAnyLineKeepsTailAndSince(t *testing.T) {
	cs := fake.NewSimpleClientset(runningPod("web-1", "app"))
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"web-1/app": {"", ts(9, 0) + " after the retry\n"}, // the first stream ends empty
	}}
	s := &Streamer{Clientset: cs, open: sc.open, Retry: time.Millisecond}
	collectLines(t, s, Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Follow: true,
		Tail: 5, Since: time.Minute}, 1)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i, o := range sc.opts["web-1/app"][:2] {
		if o.TailLines == nil || *o.TailLines != 5 || o.SinceTime == nil {
			t.Errorf("open %d: tail %v since %v", i, o.TailLines, o.SinceTime)
		}
	}
}
