// Command coredns is CoreDNS with only the plugins the skiff test cluster's
// DNS needs, so it builds quickly and pulls in no cloud SDKs.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins register themselves with CoreDNS when imported.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
