package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// binaries holds the paths of everything the cluster runs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kubelet, proxy string
	coredns                                                       string
	pause, runcWrapper                                            string
}

// kubeCommands lists the binaries built from k8s.io/kubernetes/cmd.
func kubeCommands() []string {
	return []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}
}

// ensureBinaries builds what the cache lacks. Each group lives in a dir
// named after its version and appears there only when complete (built into
// a temporary dir that is then renamed), so an interrupted build is redone.
func (c *cluster) ensureBinaries(ctx context.Context) (*binaries, error) {
	kubeDir := filepath.Join(c.cfg.CacheDir, "kubernetes-"+kubeVersion)
	etcdDir := filepath.Join(c.cfg.CacheDir, "etcd-"+etcdVersion)
	dnsDir := filepath.Join(c.cfg.CacheDir, "coredns-"+corednsVersion)

	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld,
			"-X", pkg+".gitVersion="+kubeVersion,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+strings.Split(kubeVersion, ".")[1],
			"-X", pkg+".gitTreeState=clean")
	}
	var kubePkgs []string
	for _, cmd := range kubeCommands() {
		kubePkgs = append(kubePkgs, "k8s.io/kubernetes/cmd/"+cmd)
	}
	groups := []struct {
		dir, module, ldflags string
		outs, pkgs           []string
	}{
		{kubeDir, "tools/kube", strings.Join(ld, " "), kubeCommands(), kubePkgs},
		{etcdDir, "tools/kube", "", []string{"etcd"}, []string{"go.etcd.io/etcd/server/v3"}},
		{dnsDir, "tools/coredns", "", []string{"coredns"}, []string{"."}},
	}
	for _, g := range groups {
		if complete(g.dir, g.outs) {
			continue
		}
		start := time.Now()
		c.logf("building %s into %s (cold build: several minutes)", strings.Join(g.outs, ", "), g.dir)
		tmp := g.dir + ".tmp"
		if err := os.RemoveAll(tmp); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, err
		}
		// One go build for several commands (named after their dirs)
		// shares the compile work and links in parallel.
		out := filepath.Join(tmp, g.outs[0])
		if len(g.pkgs) > 1 {
			out = tmp + string(filepath.Separator)
		}
		args := append([]string{"-n", "10", "go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + g.ldflags),
			"-o", out}, g.pkgs...)
		if err := c.goBuild(ctx, filepath.Join(c.cfg.SrcDir, g.module), args); err != nil {
			return nil, fmt.Errorf("building %s: %w", strings.Join(g.pkgs, " "), err)
		}
		if err := os.RemoveAll(g.dir); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, g.dir); err != nil {
			return nil, err
		}
		c.logf("built %s in %s", strings.Join(g.outs, ", "), time.Since(start).Round(time.Second))
	}

	// The small helpers are part of this module and build in seconds.
	helperDir := c.state("bin")
	if err := os.MkdirAll(helperDir, 0o755); err != nil {
		return nil, err
	}
	for _, h := range []string{"pause", "runc-wrapper"} {
		args := []string{"-n", "10", "go", "build", "-trimpath", "-ldflags", "-s -w",
			"-o", filepath.Join(helperDir, h), "./cmd/" + h}
		if err := c.goBuild(ctx, c.cfg.SrcDir, args); err != nil {
			return nil, fmt.Errorf("building %s: %w", h, err)
		}
	}

	return &binaries{
		etcd:              filepath.Join(etcdDir, "etcd"),
		apiserver:         filepath.Join(kubeDir, "kube-apiserver"),
		controllerManager: filepath.Join(kubeDir, "kube-controller-manager"),
		scheduler:         filepath.Join(kubeDir, "kube-scheduler"),
		kubelet:           filepath.Join(kubeDir, "kubelet"),
		proxy:             filepath.Join(kubeDir, "kube-proxy"),
		coredns:           filepath.Join(dnsDir, "coredns"),
		pause:             filepath.Join(helperDir, "pause"),
		runcWrapper:       filepath.Join(helperDir, "runc-wrapper"),
	}, nil
}

func complete(dir string, names []string) bool {
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// goBuild runs `nice go build ...` with cgo off, so the binaries are static
// and can be dropped into images with an empty base.
func (c *cluster) goBuild(ctx context.Context, dir string, args []string) error {
	cmd := exec.CommandContext(ctx, "nice", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout = c.errOut
	cmd.Stderr = c.errOut
	return cmd.Run()
}
