// Command cluster starts and stops the single-node Kubernetes cluster that
// skiff's end-to-end tests run against.
//
//	go run . build   build (or reuse) the cached binaries
//	go run . up      start the cluster; prints the env lines at the end
//	go run . down    stop everything up started and undo its changes
//	go run . env     print export lines for KUBECONFIG and the SKIFF_TEST_*
//	                 variables (registries, gateway, issuers, IngressClass)
//	go run . logs    print every component's log
//	go run . status  say whether the cluster's processes are alive
//
// Everything lives under a state dir (SKIFF_CLUSTER_STATE, default
// /var/lib/skiff-cluster) and a cache dir for binaries that survives down
// (SKIFF_CLUSTER_CACHE, default /var/cache/skiff-cluster).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: go run . [flags] build|up|down|env|logs|status

flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	cfg := defaultConfig()
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "state dir: certs, configs, data, logs (env SKIFF_CLUSTER_STATE)")
	fs.StringVar(&cfg.CacheDir, "cache", cfg.CacheDir, "cache dir for built binaries (env SKIFF_CLUSTER_CACHE)")
	fs.StringVar(&cfg.SrcDir, "src", cfg.SrcDir, "the testscripts/cluster source dir (default: the working dir)")
	kubeletV := 0
	if v := os.Getenv("SKIFF_CLUSTER_KUBELET_V"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(stderr, "SKIFF_CLUSTER_KUBELET_V=%q: want the kubelet's log verbosity, a number from 0 to 10\n", v)
			return 2
		}
		kubeletV = n
	}
	fs.IntVar(&cfg.KubeletV, "kubelet-v", kubeletV, "up: the kubelet's log `verbosity`, 0 to 10; 3 logs its probes (env SKIFF_CLUSTER_KUBELET_V)")
	lines := fs.Int("lines", 300, "logs: print the last `n` lines of each log; 0 for all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.KubeletV < 0 || cfg.KubeletV > 10 {
		fmt.Fprintf(stderr, "-kubelet-v %d: want the kubelet's log verbosity, a number from 0 to 10\n", cfg.KubeletV)
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := newCluster(cfg, stdout, stderr)
	var err error
	switch fs.Arg(0) {
	case "build":
		_, err = c.ensureBinaries(ctx)
	case "up":
		err = c.up(ctx)
	case "down":
		err = c.down(ctx)
	case "env":
		err = c.printEnv()
	case "logs":
		err = c.printLogs(*lines)
	case "status":
		err = c.status()
	case "podsd":
		err = c.podsd(ctx) // run by up, next to Prometheus
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(stderr, "cluster %s: %v\n", fs.Arg(0), err)
		return 1
	}
	return 0
}

// exitError ends the program with a code and no further message.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
