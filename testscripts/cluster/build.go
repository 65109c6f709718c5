package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// binaries holds the paths of everything the cluster runs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kubelet, proxy string
	coredns                                                       string
	pause, runcWrapper                                            string
	keda                                                          kedaBinaries
	nats                                                          string // nats-server, the events' bus
	kubeRouter                                                    string // the NetworkPolicy enforcer
	edge                                                          edgeBinaries
}

// kedaBinaries are the serverless engines, run as pods on the cluster.
type kedaBinaries struct {
	operator, adapter                  string // KEDA
	interceptor, scaler, addonOperator string // its HTTP add-on
}

// kubeCommands lists the binaries built from k8s.io/kubernetes/cmd.
func kubeCommands() []string {
	return []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}
}

// buildGroup is a set of binaries built from one tools module in one go
// build, cached in a dir named after their version.
type buildGroup struct {
	dir, module, ldflags string
	bins                 []binary
	// prepare, when set, runs before the build with its scratch dir and
	// returns more go build flags.
	prepare func(ctx context.Context, scratch string) ([]string, error)
}

// binary is one command of a build group: its package and the file name
// it gets in the cache (the package's last element unless they differ).
type binary struct{ out, pkg string }

func (g buildGroup) path(out string) string { return filepath.Join(g.dir, out) }

// ensureBinaries builds what the cache lacks. Each group lives in a dir
// named after its version and appears there only when complete (built into
// a temporary dir that is then renamed), so an interrupted build is redone.
func (c *cluster) ensureBinaries(ctx context.Context) (*binaries, error) {
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld,
			"-X", pkg+".gitVersion="+kubeVersion,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+strings.Split(kubeVersion, ".")[1],
			"-X", pkg+".gitTreeState=clean")
	}
	var kubeBins []binary
	for _, cmd := range kubeCommands() {
		kubeBins = append(kubeBins, binary{cmd, "k8s.io/kubernetes/cmd/" + cmd})
	}
	cache := func(name string) string { return filepath.Join(c.cfg.CacheDir, name) }
	kube := buildGroup{dir: cache("kubernetes-" + kubeVersion), module: "tools/kube", ldflags: strings.Join(ld, " "), bins: kubeBins}
	etcd := buildGroup{dir: cache("etcd-" + etcdVersion), module: "tools/kube", bins: []binary{{"etcd", "go.etcd.io/etcd/server/v3"}}}
	dns := buildGroup{dir: cache("coredns-" + corednsVersion), module: "tools/coredns", bins: []binary{{"coredns", "."}}}
	keda := buildGroup{cache("keda-" + kedaVersion + "-" + kedaTrimKey()), "tools/keda", "", []binary{
		{"keda", "github.com/kedacore/keda/v2/cmd/operator"},
		{"keda-adapter", "github.com/kedacore/keda/v2/cmd/adapter"},
	}, c.prepareKEDA}
	addon := buildGroup{dir: cache("keda-http-add-on-" + httpAddonVersion), module: "tools/httpaddon", bins: []binary{
		{"interceptor", "github.com/kedacore/http-add-on/interceptor"},
		{"scaler", "github.com/kedacore/http-add-on/scaler"},
		{"operator", "github.com/kedacore/http-add-on/operator"},
	}}
	bus := buildGroup{dir: cache("nats-server-" + natsVersion), module: "tools/nats", bins: []binary{
		{"nats-server", "github.com/nats-io/nats-server/v2"},
	}}
	gw := buildGroup{dir: cache("traefik-" + traefikVersion + "-" + traefikTrimKey()), module: "tools/traefik",
		ldflags: "-X github.com/traefik/traefik/v3/pkg/version.Version=" + traefikVersion,
		bins:    []binary{{"traefik", "github.com/traefik/traefik/v3/cmd/traefik"}},
		prepare: c.prepareTraefik}
	// cert-manager's controller and solver are mains of tools/certmanager:
	// the cache dir is named after their source too.
	cmKey, err := sourceKey(filepath.Join(c.cfg.SrcDir, "tools/certmanager"))
	if err != nil {
		return nil, err
	}
	cm := buildGroup{dir: cache("cert-manager-" + certManagerVersion + "-" + cmKey), module: "tools/certmanager", bins: []binary{
		{"cert-manager-controller", "./controller"},
		{"acmesolver", "./acmesolver"},
	}}
	// kube-router's own version string, or it logs "Malformed version".
	netpol := buildGroup{dir: cache("kube-router-" + kubeRouterVersion), module: "tools/kuberouter",
		ldflags: "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=" + kubeRouterVersion,
		bins:    []binary{{"kube-router", "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"}}}
	acme := buildGroup{dir: cache("pebble-" + pebbleVersion), module: "tools/pebble", bins: []binary{
		{"pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble"},
		{"pebble-challtestsrv", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"},
	}}
	for _, g := range []buildGroup{kube, etcd, dns, keda, addon, bus, netpol, acme, cm, gw} {
		if err := c.buildGroup(ctx, g); err != nil {
			return nil, err
		}
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
		etcd:              etcd.path("etcd"),
		apiserver:         kube.path("kube-apiserver"),
		controllerManager: kube.path("kube-controller-manager"),
		scheduler:         kube.path("kube-scheduler"),
		kubelet:           kube.path("kubelet"),
		proxy:             kube.path("kube-proxy"),
		coredns:           dns.path("coredns"),
		pause:             filepath.Join(helperDir, "pause"),
		runcWrapper:       filepath.Join(helperDir, "runc-wrapper"),
		nats:              bus.path("nats-server"),
		kubeRouter:        netpol.path("kube-router"),
		edge: edgeBinaries{
			traefik:      gw.path("traefik"),
			certManager:  cm.path("cert-manager-controller"),
			acmeSolver:   cm.path("acmesolver"),
			pebble:       acme.path("pebble"),
			challtestsrv: acme.path("pebble-challtestsrv"),
		},
		keda: kedaBinaries{
			operator:      keda.path("keda"),
			adapter:       keda.path("keda-adapter"),
			interceptor:   addon.path("interceptor"),
			scaler:        addon.path("scaler"),
			addonOperator: addon.path("operator"),
		},
	}, nil
}

// buildGroup builds a group unless the cache holds all of it.
func (c *cluster) buildGroup(ctx context.Context, g buildGroup) error {
	var outs, pkgs []string
	for _, b := range g.bins {
		outs = append(outs, b.out)
		pkgs = append(pkgs, b.pkg)
	}
	if complete(g.dir, outs) {
		return nil
	}
	start := time.Now()
	c.logf("building %s into %s (cold build: several minutes)", strings.Join(outs, ", "), g.dir)
	tmp := g.dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	// One go build for several commands (named after their dirs) shares
	// the compile work and links in parallel.
	out := filepath.Join(tmp, outs[0])
	if len(pkgs) > 1 {
		out = tmp + string(filepath.Separator)
	}
	args := []string{"-n", "10", "go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + g.ldflags), "-o", out}
	if g.prepare != nil {
		scratch := g.dir + ".src"
		if err := os.RemoveAll(scratch); err != nil {
			return err
		}
		more, err := g.prepare(ctx, scratch)
		if err != nil {
			return fmt.Errorf("preparing the build of %s: %w", strings.Join(pkgs, " "), err)
		}
		defer os.RemoveAll(scratch)
		args = append(args, more...)
	}
	if err := c.goBuild(ctx, filepath.Join(c.cfg.SrcDir, g.module), append(args, pkgs...)); err != nil {
		return fmt.Errorf("building %s: %w", strings.Join(pkgs, " "), err)
	}
	if len(pkgs) > 1 {
		for _, b := range g.bins {
			if built := path.Base(b.pkg); built != b.out {
				if err := os.Rename(filepath.Join(tmp, built), filepath.Join(tmp, b.out)); err != nil {
					return err
				}
			}
		}
	}
	if err := os.RemoveAll(g.dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, g.dir); err != nil {
		return err
	}
	c.logf("built %s in %s", strings.Join(outs, ", "), time.Since(start).Round(time.Second))
	return nil
}

// sourceKey names a tools module's own source: the first 8 hex digits of
// a SHA-256 over its go.mod, go.sum and .go files, in path order.
func sourceKey(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n := d.Name(); !d.IsDir() && (n == "go.mod" || n == "go.sum" || strings.HasSuffix(n, ".go")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:8], nil
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
