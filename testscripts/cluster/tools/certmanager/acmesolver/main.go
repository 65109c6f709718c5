// Command acmesolver answers one ACME http-01 challenge: cert-manager's
// solver pods run it with --listen-port, --domain, --token and --key (the
// module's own main, cmd/acmesolver, is not part of its module).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cert-manager/cert-manager/pkg/issuer/acme/http/solver"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

func main() {
	fs := flag.NewFlagSet("acmesolver", flag.ExitOnError)
	s := &solver.HTTP01Solver{}
	fs.IntVar(&s.ListenPort, "listen-port", 8089, "port to listen on")
	fs.StringVar(&s.Domain, "domain", "", "the domain name being verified")
	fs.StringVar(&s.Token, "token", "", "the challenge's token")
	fs.StringVar(&s.Key, "key", "", "the challenge's key")
	_ = fs.Parse(os.Args[1:])
	if err := s.Listen(logf.Log.WithName("acmesolver")); err != nil {
		fmt.Fprintln(os.Stderr, "acmesolver:", err)
		os.Exit(1)
	}
}
