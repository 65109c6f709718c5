package cli

import (
	"context"
	"net"
	"strings"
	"testing"
)

// On a terminal, login shows what it waits for while the registry answers.
func TestLoginSpinsOnATerminal(t *testing.T) {
	f, _, errOut := testFactoryBuffers(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // refused: a quick failure
	opts := &LoginOptions{Factory: f, Registry: host, Username: "me", Password: "pw", PasswordSet: true}
	if err := loginRun(context.Background(), opts); err == nil {
		t.Fatal("login to a closed port worked")
	}
	if !strings.Contains(errOut.String(), "checking the credentials with "+host) {
		t.Errorf("no spinner on stderr:\n%q", errOut.String())
	}
}
