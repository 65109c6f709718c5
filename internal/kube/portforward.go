package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward is a running port-forward.
type Forward struct {
	// Addr is the local address, 127.0.0.1:PORT.
	Addr string
	// Pod is the pod the traffic goes to.
	Pod  string
	stop chan struct{}
	done chan error
}

// Close stops the forward.
func (f *Forward) Close() error {
	close(f.stop)
	return <-f.done
}

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
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, port, err)
	case <-ctx.Done():
		close(stop)
		return nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return nil, fmt.Errorf("port-forward to %s/%s:%d: no local port", ns, pod, port)
	}
	return &Forward{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0].Local), Pod: pod, stop: stop, done: done}, nil
}
