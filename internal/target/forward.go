package target

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/kube"
)

// DefaultForwardWait bounds how long a connection to a Forwarder waits
// for a ready pod.
const DefaultForwardWait = 60 * time.Second

// Tunnel is a port-forward to one pod; *kube.Forward is the real one.
type Tunnel interface {
	// LocalAddr is the loopback address that reaches the pod.
	LocalAddr() string
	// Done is closed when the tunnel has ended.
	Done() <-chan struct{}
	Close() error
}

// Forwarder serves one local address for a target across rollouts: it
// watches the target's pods and sends each new connection to the newest
// ready one, moving as soon as a new pod is ready. A connection that
// arrives while no pod is ready waits for one (up to Wait), so a caller
// sees a slow answer rather than a refused connection.
type Forwarder struct {
	Clientset kubernetes.Interface
	Namespace string
	Target    Target
	// Open opens a tunnel to port of pod (kube.Client.ForwardPort).
	Open func(ctx context.Context, pod string, port int) (Tunnel, error)
	// Wait bounds the wait for a ready pod (0: DefaultForwardWait).
	Wait time.Duration
	// Moved, when set, is told each time the pod changes ("" when none is
	// ready any more).
	Moved func(pod string)

	mu      sync.Mutex
	pods    map[string]*corev1.Pod
	cur     *tunnel
	old     []*tunnel
	changed chan struct{} // closed when cur changes
	kick    chan struct{}
}

type tunnel struct {
	pod string
	t   Tunnel

	mu      sync.Mutex
	retired bool
	// waiting are the connections through the tunnel that have had no
	// byte back yet, each with its upstream end.
	waiting map[net.Conn]net.Conn
}

// wait registers a connection that has had no answer yet; false when the
// tunnel is retired already.
func (t *tunnel) wait(conn, up net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired {
		return false
	}
	if t.waiting == nil {
		t.waiting = map[net.Conn]net.Conn{}
	}
	t.waiting[conn] = up
	return true
}

func (t *tunnel) answered(conn net.Conn) {
	t.mu.Lock()
	delete(t.waiting, conn)
	t.mu.Unlock()
}

// retire closes the tunnel without waiting, and the connections through it
// that had no answer yet: a pod that is going away may never answer them
// (a port-forward stream to it can hang for 30 s), and their callers
// should try again, which reaches the current pod. Connections being
// answered go on until the pod ends them.
func (t *tunnel) retire() {
	t.mu.Lock()
	if t.retired {
		t.mu.Unlock()
		return
	}
	t.retired = true
	waiting := t.waiting
	t.waiting = nil
	t.mu.Unlock()
	for conn, up := range waiting {
		_ = conn.Close()
		_ = up.Close()
	}
	go func() { _ = t.t.Close() }() // may wait on streams to the pod that went away
}

// Run serves ln until ctx ends, then closes ln and every tunnel.
func (f *Forwarder) Run(ctx context.Context, ln net.Listener) error {
	sel, err := labels.Parse(f.Target.Selector())
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.pods = map[string]*corev1.Pod{}
	f.changed = make(chan struct{})
	f.kick = make(chan struct{}, 1)
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		f.mu.Lock()
		all := f.old
		if f.cur != nil {
			all = append(all, f.cur)
		}
		f.cur, f.old = nil, nil
		f.mu.Unlock()
		for _, t := range all {
			t.retire()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.follow(ctx, sel)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serve(ctx, conn)
		}()
	}
}

// follow keeps f.pods current and f.cur on the newest ready pod.
func (f *Forwarder) follow(ctx context.Context, sel labels.Selector) {
	pods := f.Clientset.CoreV1().Pods(f.Namespace)
	opts := metav1.ListOptions{LabelSelector: sel.String()}
	for ctx.Err() == nil {
		// Watch, then list: what changes in between arrives on the watch.
		w, err := pods.Watch(ctx, opts)
		if err != nil {
			f.retry(ctx)
			continue
		}
		list, err := pods.List(ctx, opts)
		if err != nil {
			w.Stop()
			f.retry(ctx)
			continue
		}
		f.mu.Lock()
		clear(f.pods)
		for i := range list.Items {
			f.pods[list.Items[i].Name] = &list.Items[i]
		}
		f.mu.Unlock()
		f.update(ctx)
		f.watch(ctx, w, sel)
		w.Stop()
	}
}

// watch applies the pod events of w until it ends.
func (f *Forwarder) watch(ctx context.Context, w watch.Interface, sel labels.Selector) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
			f.update(ctx)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || !sel.Matches(labels.Set(pod.Labels)) {
				continue
			}
			f.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(f.pods, pod.Name)
			} else {
				f.pods[pod.Name] = pod
			}
			f.mu.Unlock()
			f.update(ctx)
		}
	}
}

func (f *Forwarder) retry(ctx context.Context) {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// update moves f.cur to the newest ready pod and closes the tunnels of
// pods that are no longer ready.
func (f *Forwarder) update(ctx context.Context) {
	f.mu.Lock()
	best := NewestReady(f.pods)
	cur := f.cur
	if cur != nil && !f.alive(cur) {
		cur = nil
	}
	var stale []*tunnel
	keep := f.old[:0]
	for _, t := range f.old {
		if f.alive(t) && t.pod != best {
			keep = append(keep, t)
		} else {
			stale = append(stale, t)
		}
	}
	f.old = keep
	f.mu.Unlock()
	for _, t := range stale {
		t.retire()
	}
	if best == "" || (cur != nil && cur.pod == best) {
		if cur == nil {
			f.setCurrent(nil)
		}
		return
	}
	t, err := f.Open(ctx, best, f.Target.Port())
	if err != nil {
		// The pod may be going away; the next event or connection tries again.
		if cur == nil {
			f.setCurrent(nil)
		}
		return
	}
	f.setCurrent(&tunnel{pod: best, t: t})
}

// alive: the tunnel works and its pod is still ready. Call with f.mu held.
func (f *Forwarder) alive(t *tunnel) bool {
	select {
	case <-t.t.Done():
		return false
	default:
	}
	p, ok := f.pods[t.pod]
	return ok && kube.PodReady(p)
}

func (f *Forwarder) setCurrent(t *tunnel) {
	f.mu.Lock()
	prev := f.cur
	if prev == t {
		f.mu.Unlock()
		return
	}
	f.cur = t
	if prev != nil {
		// Its pod may still answer the connections it has: close it once
		// the pod is no longer ready.
		f.old = append(f.old, prev)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	if f.Moved != nil {
		pod := ""
		if t != nil {
			pod = t.pod
		}
		f.Moved(pod)
	}
}

// current waits until there is a tunnel to a ready pod.
func (f *Forwarder) current(ctx context.Context) (*tunnel, error) {
	for {
		f.mu.Lock()
		cur, changed := f.cur, f.changed
		f.mu.Unlock()
		if cur != nil {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// lost says a tunnel failed: drop it and find another.
func (f *Forwarder) lost(t *tunnel) {
	f.mu.Lock()
	if f.cur == t {
		f.cur = nil
	}
	f.mu.Unlock()
	t.retire()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// serve pipes one connection to the current pod.
func (f *Forwarder) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	wait := f.Wait
	if wait <= 0 {
		wait = DefaultForwardWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var up net.Conn
	var via *tunnel
	for up == nil {
		t, err := f.current(wctx)
		if err != nil {
			return // no pod got ready in time: the caller sees the connection close
		}
		var d net.Dialer
		dctx, dcancel := context.WithTimeout(wctx, 2*time.Second)
		up, err = d.DialContext(dctx, "tcp", t.t.LocalAddr())
		dcancel()
		if err != nil {
			f.lost(t)
			up = nil
			continue
		}
		if !t.wait(conn, up) { // retired meanwhile: take the next
			_ = up.Close()
			up = nil
			continue
		}
		via = t
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); closeWrite(up); done <- struct{}{} }()
	go func() {
		_, _ = io.Copy(conn, &firstByte{r: up, seen: func() { via.answered(conn) }})
		closeWrite(conn)
		done <- struct{}{}
	}()
	select {
	case <-ctx.Done():
	case <-done:
		<-done
	}
	via.answered(conn)
}

// firstByte calls seen once, when the first bytes have been read.
type firstByte struct {
	r    io.Reader
	seen func()
	once sync.Once
}

func (b *firstByte) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.once.Do(b.seen)
	}
	return n, err
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok { // *net.TCPConn
		_ = cw.CloseWrite()
	}
}

// NewestReady names the newest ready pod of pods ("" when none is).
func NewestReady(pods map[string]*corev1.Pod) string {
	var best *corev1.Pod
	for _, p := range pods {
		if !kube.PodReady(p) {
			continue
		}
		if best == nil || p.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(p.CreationTimestamp.Equal(&best.CreationTimestamp) && p.Name > best.Name) {
			best = p
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// Following is a Forwarder serving a local listener.
type Following struct {
	// Addr is the local address, 127.0.0.1:PORT.
	Addr   string
	cancel context.CancelFunc
	done   chan error
}

// Close stops serving and closes the tunnels.
func (f *Following) Close() error {
	f.cancel()
	return <-f.done
}

// Follow serves ln with a Forwarder for t, reaching its pods through kc's
// port-forwards, until Close or ctx ends.
func Follow(ctx context.Context, kc *kube.Client, namespace string, t Target, ln net.Listener) *Following {
	ctx, cancel := context.WithCancel(ctx)
	fw := &Forwarder{Clientset: kc.Clientset, Namespace: namespace, Target: t,
		Open: func(ctx context.Context, pod string, port int) (Tunnel, error) {
			return kc.ForwardPort(ctx, namespace, pod, port)
		}}
	f := &Following{Addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- fw.Run(ctx, ln) }()
	return f
}
