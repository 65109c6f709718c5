package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward is a running port-forward.
type Forward struct {
	// Addr is the local address, 127.0.0.1:PORT.
	Addr string
	// Pod is the pod the traffic goes to.
	Pod      string
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error // set before done closes
}

// Close stops the forward.
func (f *Forward) Close() error {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
	return f.err
}

// Done is closed when the forward has ended, closed or lost (its pod went
// away, the connection to the API server broke).
func (f *Forward) Done() <-chan struct{} { return f.done }

// ForwardPort forwards a free loopback port to port of pod in ns, as
// `kubectl port-forward` does.
func (c *Client) ForwardPort(ctx context.Context, ns, pod string, port int) (*Forward, error) {
	transport, upgrader, err := spdy.RoundTripperFor(c.REST)
	if err != nil {
		return nil, err
	}
	u := c.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	f := &Forward{Pod: pod, stop: stop, done: make(chan struct{})}
	go func() {
		f.err = pf.ForwardPorts()
		close(f.done)
	}()
	select {
	case <-ready:
	case <-f.done:
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, port, f.err)
	case <-ctx.Done():
		_ = f.Close()
		return nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		_ = f.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: no local port", ns, pod, port)
	}
	f.Addr = fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
	return f, nil
}

// LocalAddr is Addr, the local end of the forward.
func (f *Forward) LocalAddr() string { return f.Addr }
