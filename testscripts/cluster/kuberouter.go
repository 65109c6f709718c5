package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// The NetworkPolicy enforcer (issue 29): kube-router's firewall only, a
// process on the host beside kube-proxy. It polices traffic between pods
// on the bridge with iptables (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*
// chains in the filter table) and ipsets (KUBE-SRC-*, KUBE-DST-*); the
// node itself may always reach every pod.
const kubeRouterName = "kube-router"

// kubeRouterArgs runs only the firewall: no routing (the bridge CNI
// routes), no service proxy (kube-proxy's), no health server (it would
// listen on every interface: there is no address flag).
func (c *cluster) kubeRouterArgs(bin string) []string {
	return append([]string{bin}, flags(
		"kubeconfig", c.state("admin.kubeconfig"),
		"run-firewall", "true",
		"run-router", "false",
		"run-service-proxy", "false",
		"hostname-override", nodeName,
		"service-cluster-ip-range", serviceCIDR,
		"health-port", "0",
		"v", "1",
	)...)
}

// startKubeRouter starts the enforcer once the Node is registered (it
// reads the Node's address at start and exits without it), and waits for
// its first sync: its FORWARD chain in place.
func (c *cluster) startKubeRouter(ctx context.Context, bin string) error {
	if _, err := exec.LookPath("ipset"); err != nil {
		return errors.New("kube-router needs Debian's ipset: run `ci.sh install`")
	}
	start := time.Now()
	rec, err := c.start(kubeRouterName, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, c.kubeRouterArgs(bin)...)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-router's firewall", rec, 90*time.Second, func(context.Context) error {
		return exec.Command("iptables", "-w", "-t", "filter", "-S", "KUBE-ROUTER-FORWARD").Run()
	}); err != nil {
		return err
	}
	c.logf("kube-router enforces NetworkPolicies (its chains in place in %s)", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// isKubeRouterSet tells kube-router's ipsets (IPv6 ones carry "inet6:").
func isKubeRouterSet(name string) bool {
	name = strings.TrimPrefix(name, "inet6:")
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "kube-router-")
}

// destroyKubeRouterSets removes kube-router's ipsets, which outlive it. A
// set can go only once no rule names it: after cleanIptables.
func destroyKubeRouterSets() error {
	if _, err := exec.LookPath("ipset"); err != nil {
		return nil
	}
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		return fmt.Errorf("ipset list: %w", err)
	}
	var errs []error
	for _, name := range strings.Fields(string(out)) {
		if isKubeRouterSet(name) {
			if err := runQuiet("ipset", "destroy", name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// kubeRouterSets lists kube-router's ipsets present now.
func kubeRouterSets() []string {
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		return nil
	}
	var found []string
	for _, name := range strings.Fields(string(out)) {
		if isKubeRouterSet(name) {
			found = append(found, name)
		}
	}
	return found
}
