package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeTunnel reaches a test server that stands for a pod.
type fakeTunnel struct {
	addr string
	done chan struct{}
	once sync.Once
}

func (t *fakeTunnel) LocalAddr() string     { return t.addr }
func (t *fakeTunnel) Done() <-chan struct{} { return t.done }
func (t *fakeTunnel) Close() error          { t.once.Do(func() { close(t.done) }); return nil }

// podServers answers "pod NAME" for each pod that has a server.
type podServers struct {
	t       *testing.T
	mu      sync.Mutex
	servers map[string]*httptest.Server
	opened  map[string]int
}

func (s *podServers) add(name string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "pod "+name) }))
	s.t.Cleanup(srv.Close)
	s.mu.Lock()
	s.servers[name] = srv
	s.mu.Unlock()
}

func (s *podServers) open(_ context.Context, pod string, port int) (Tunnel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[pod]
	if !ok || port != 8080 {
		return nil, fmt.Errorf("no pod %s:%d", pod, port)
	}
	s.opened[pod]++
	return &fakeTunnel{addr: srv.Listener.Addr().String(), done: make(chan struct{})}, nil
}

// runForwarder serves f on a free loopback port until ctx ends; moved gets
// each pod it moves to, done Run's result.
func runForwarder(ctx context.Context, t *testing.T, f *Forwarder) (addr string, moved chan string, done chan error) {
	t.Helper()
	moved, done = make(chan string, 10), make(chan error, 1)
	f.Wait = 10 * time.Second
	f.Moved = func(p string) { moved <- p }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- f.Run(ctx, ln) }()
	return ln.Addr().String(), moved, done
}

func readyPodAt(name string, created time.Time) *corev1.Pod {
	p := pod(name, true, 0)
	p.CreationTimestamp = metav1.NewTime(created)
	return p
}

func TestForwarderFollowsTheNewestReadyPod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c, cs := cluster(t, t.TempDir(), readyPodAt("orders-a", t0))
	pods := &podServers{t: t, servers: map[string]*httptest.Server{}, opened: map[string]int{}}
	pods.add("orders-a")
	pods.add("orders-b")
	addr, moved, done := runForwarder(ctx, t, &Forwarder{Clientset: cs, Namespace: "shop", Target: c.For(orders), Open: pods.open})
	url := "http://" + addr + "/"
	get := func() string {
		t.Helper()
		// A new connection each time: the forwarder picks the pod per connection.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	if got := <-moved; got != "orders-a" {
		t.Fatalf("first pod: %q", got)
	}
	if body := get(); body != "pod orders-a" {
		t.Fatalf("answered %q", body)
	}

	// A rollout: b starts not ready, so a keeps serving; once b is ready,
	// new connections go to b at once, though a is still ready.
	b := readyPodAt("orders-b", t0.Add(time.Minute))
	b.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if body := get(); body != "pod orders-a" {
		t.Fatalf("with b not ready, answered %q", body)
	}
	b.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-moved; got != "orders-b" {
		t.Fatalf("moved to %q", got)
	}
	if body := get(); body != "pod orders-b" {
		t.Fatalf("after b got ready, answered %q", body)
	}

	// No ready pod: a connection waits, and is answered once one is ready.
	for _, name := range []string{"orders-a", "orders-b"} {
		if err := cs.CoreV1().Pods("shop").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-moved; got != "" {
		t.Fatalf("with no pods, moved to %q", got)
	}
	answered := make(chan string, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := client.Get(url)
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answered <- string(body)
	}()
	pods.add("orders-c")
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, readyPodAt("orders-c", t0.Add(2*time.Minute)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-answered; got != "pod orders-c" {
		t.Fatalf("the waiting request got %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pods.opened["orders-a"] != 1 || pods.opened["orders-b"] != 1 {
		t.Errorf("a tunnel per pod, opened once each: %v", pods.opened)
	}
}

func TestNewestReady(t *testing.T) {
	t0 := time.Now()
	old, young := readyPodAt("a", t0), readyPodAt("b", t0.Add(time.Second))
	notReady := readyPodAt("c", t0.Add(time.Hour))
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	gone := readyPodAt("d", t0.Add(time.Hour))
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	for _, tc := range []struct {
		pods map[string]*corev1.Pod
		want string
	}{
		{map[string]*corev1.Pod{}, ""},
		{map[string]*corev1.Pod{"c": notReady, "d": gone}, ""},
		{map[string]*corev1.Pod{"a": old, "b": young, "c": notReady, "d": gone}, "b"},
		{map[string]*corev1.Pod{"a": old}, "a"},
	} {
		if got := NewestReady(tc.pods); got != tc.want {
			t.Errorf("NewestReady(%v) = %q, want %q", tc.pods, got, tc.want)
		}
	}
}

func TestForwarderDropsUnansweredConnectionsOfAPodGoingAway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c, cs := cluster(t, t.TempDir(), readyPodAt("orders-a", t0))
	pods := &podServers{t: t, servers: map[string]*httptest.Server{}, opened: map[string]int{}}
	// a accepts connections and never answers: a pod that stopped serving.
	arrived := make(chan struct{}, 1)
	hang := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	hang.Start()
	t.Cleanup(func() { hang.CloseClientConnections(); hang.Close() })
	pods.servers["orders-a"] = hang
	pods.add("orders-b")
	addr, moved, _ := runForwarder(ctx, t, &Forwarder{Clientset: cs, Namespace: "shop", Target: c.For(orders), Open: pods.open})
	<-moved // a
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	<-arrived // the request is at a, which will not answer
	// The rollout: b ready, a going away.
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, readyPodAt("orders-b", t0.Add(time.Minute)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-moved; got != "orders-b" {
		t.Fatalf("moved to %q", got)
	}
	a, _ := cs.CoreV1().Pods("shop").Get(ctx, "orders-a", metav1.GetOptions{})
	a.DeletionTimestamp = &metav1.Time{Time: t0.Add(2 * time.Minute)}
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The connection that waited on a is closed, not left hanging.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the unanswered connection: read %d, %v", n, err)
	}
}
