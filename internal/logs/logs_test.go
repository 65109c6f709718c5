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
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// waitFor is how long a test waits for something that should happen at once.
const waitFor = 10 * time.Second

// recv returns the next value of ch, failing the test, naming what was
// awaited, when none comes within waitFor.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out after %s waiting for %s", waitFor, what)
		panic("unreachable")
	}
}

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
	held  map[string]*heldStream
}

// heldStream is the first stream of a pod/container that outlived its
// chunks: opened is closed when it is opened, ended when its context ends
// (the streamer closed it).
type heldStream struct {
	opened, ended chan struct{}
}

// hold returns the held stream of key, created on first use.
func (s *script) hold(key string) *heldStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(key)
}

func (s *script) holdLocked(key string) *heldStream {
	if s.held == nil {
		s.held = map[string]*heldStream{}
	}
	h := s.held[key]
	if h == nil {
		h = &heldStream{opened: make(chan struct{}), ended: make(chan struct{})}
		s.held[key] = h
	}
	return h
}

func (s *script) callCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

func (s *script) open(ctx context.Context, _ string, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	key := pod + "/" + o.Container
	n := s.calls[key]
	s.calls[key]++
	s.opts[key] = append(s.opts[key], o)
	chunks := s.chunk[key]
	var h *heldStream
	if n == len(chunks) {
		h = s.holdLocked(key)
	}
	s.mu.Unlock()
	if n < len(chunks) {
		return io.NopCloser(strings.NewReader(chunks[n])), nil
	}
	pr, pw := io.Pipe()
	if h != nil {
		close(h.opened)
	}
	go func() {
		<-ctx.Done()
		pw.Close()
		if h != nil {
			close(h.ended)
		}
	}()
	return pr, nil
}

// watchStarted returns a channel closed once the pods of cs are watched:
// the fake clientset only tells a watch about changes made after it began.
func watchStarted(cs *fake.Clientset) <-chan struct{} {
	started := make(chan struct{})
	var once sync.Once
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(a.GetResource(), a.GetNamespace())
		if err == nil {
			once.Do(func() { close(started) })
		}
		return true, w, err
	})
	return started
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
	if err := recv(t, done, "Stream to return after cancel"); err != nil {
		t.Fatal(err)
	}
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
	watching := watchStarted(cs)
	sc := &script{calls: map[string]int{}, opts: map[string][]*corev1.PodLogOptions{}, chunk: map[string][]string{
		"web-1/app": {ts(1, 0) + " from one\n"},
		"web-2/app": {ts(5, 0) + " from two\n"},
	}}
	s := &Streamer{Clientset: cs, open: sc.open, Retry: time.Millisecond}
	// No deadline of its own: every wait below has one, and the streams
	// must not end because the context did.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Line, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Stream(ctx, Options{Namespace: "ns", Targets: []Target{{Workload: "web", Selector: "app=web"}}, Follow: true, Tail: -1}, out)
	}()
	if l := recv(t, out, "the line of web-1"); l.Message != "from one" {
		t.Fatalf("first line %+v", l)
	}
	// web-1 sent its chunk and is followed on a stream that stays open.
	web1 := sc.hold("web-1/app")
	recv(t, web1.opened, "web-1's log stream to be followed after its first chunk")
	recv(t, watching, "the pods to be watched")

	// A rollout: a new pod appears, the old one goes.
	if _, err := cs.CoreV1().Pods("ns").Create(ctx, runningPod("web-2", "app"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := recv(t, out, "the line of the new pod web-2"); l.Message != "from two" || l.Pod != "web-2" {
		t.Fatalf("second line %+v", l)
	}
	web2 := sc.hold("web-2/app")
	recv(t, web2.opened, "web-2's log stream to be followed after its first chunk")
	opensOfWeb1 := sc.callCount("web-1/app")

	if err := cs.CoreV1().Pods("ns").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The stream of the deleted pod ends, while the streamer still runs...
	recv(t, web1.ended, "the log stream of the deleted pod web-1 to be closed")
	// ...and only that one.
	select {
	case <-web2.ended:
		t.Fatal("deleting web-1 closed the stream of web-2 too")
	default:
	}

	cancel()
	if err := recv(t, done, "Stream to return after cancel"); err != nil {
		t.Fatal(err)
	}
	// Stream has returned, so every line it sent is in out: none may come
	// after the deletion, and web-1 was not reopened.
	close(out)
	for l := range out {
		t.Errorf("unexpected line after web-1 was deleted: %+v", l)
	}
	if n := sc.callCount("web-1/app"); n != opensOfWeb1 {
		t.Errorf("the log of the deleted pod web-1 was opened %d times, %d before the deletion", n, opensOfWeb1)
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
