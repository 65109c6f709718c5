package publish

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// hungRegistry is a registry address that accepts connections and never
// answers (on loopback only).
func hungRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// A registry that never answers is given up on after Timeout, once, with
// an error that says so: login, push and base images alike.
func TestRegistryThatNeverAnswers(t *testing.T) {
	host := hungRegistry(t)
	const bound = 200 * time.Millisecond
	regs, err := NewRegistries(RegistryOptions{Keychain: authn.NewMultiKeychain(), Timeout: bound, Backoff: 1})
	must(t, err)
	ctx := context.Background()
	for what, call := range map[string]func() error{
		"login": func() error { return regs.Verify(ctx, host, Credentials{Username: "u", Password: "p"}) },
		"push": func() error {
			var said string
			_, err := (&Registry{Prefix: host, Client: regs, Pushing: func(ref string) { said = ref }}).Publish(ctx, artifact(t), "hello", "latest")
			if said != host+"/hello:latest" {
				t.Errorf("Pushing was told %q before the push, want %s", said, host+"/hello:latest")
			}
			return err
		},
		"base": func() error { _, err := regs.Base(ctx, host+"/base:1"); return err },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "no answer from "+host+" within 200ms") {
			t.Errorf("%s: got %v, want no answer within 200ms", what, err)
		}
		// Both schemes (https, then plain HTTP on loopback), each asked once.
		if took > 5*bound {
			t.Errorf("%s took %s with a bound of %s", what, took, bound)
		}
	}
}
