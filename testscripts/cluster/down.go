package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// down stops exactly the processes up recorded, removes the pods' sandboxes
// through containerd (so the CNI plugins release addresses and veths), and
// undoes every host change up recorded. The logs dir is kept for
// inspection; the rest of the state dir is removed.
// downOrder is the order down stops the components in: Prometheus and
// the node's agents;
// then, once the pods' sandboxes are gone, the control plane and
// containerd; last the registries.
func downOrder() [3][]string {
	return [3][]string{
		{"prometheus", "prometheus-sd", kubeRouterName, "kube-proxy", "kubelet"},
		{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd", "containerd"},
		{"registry-auth", "registry"},
	}
}

func (c *cluster) down(ctx context.Context) error {
	if err := c.checkStateDir(); err != nil {
		return err
	}
	if !c.hasState() {
		c.logf("no cluster recorded in %s; nothing to stop", c.cfg.StateDir)
		return c.removeStateKeepingLogs()
	}
	host, err := c.loadHost()
	if err != nil {
		return err
	}
	var errs []error
	order := downOrder()
	for _, name := range order[0] {
		if err := c.stop(name, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if r, err := c.readRecord("containerd"); err == nil && r.alive() {
		if err := c.removeSandboxes(ctx); err != nil {
			c.logf("warning: removing pod sandboxes: %v (continuing)", err)
		}
	}
	for _, name := range order[1] {
		if err := c.stop(name, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// Containers whose sandboxes could not be removed: kill them through
	// their cgroups, then their shims.
	for _, cg := range host.NewCgroups {
		if err := removeCgroupTree(cg); err != nil {
			errs = append(errs, err)
		}
	}
	c.killShims()
	for _, name := range order[2] {
		if err := c.stop(name, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.undoHost(host); err != nil {
		errs = append(errs, err)
	}
	if err := c.keepPodLogs(); err != nil {
		c.logf("warning: keeping the pods' logs: %v", err)
	}
	if err := c.removeStateKeepingLogs(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.logf("cluster is down; logs kept in %s", c.logDir())
	return nil
}

// removeSandboxes stops and removes every pod sandbox through the CRI.
func (c *cluster) removeSandboxes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+c.containerdSock(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []error
	for _, sb := range resp.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
	}
	if len(resp.Items) > 0 {
		c.logf("removed %d pod sandboxes", len(resp.Items))
	}
	return errors.Join(errs...)
}

// killShims kills the containerd shims serving this cluster's containerd:
// they name its socket on their command line.
func (c *cluster) killShims() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	want := []byte(c.containerdSock())
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := bytes.Split(data, []byte{0})
		if len(args) == 0 || !bytes.HasSuffix(args[0], []byte("containerd-shim-runc-v2")) {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if string(args[i]) == "-address" && bytes.Equal(args[i+1], want) {
				pid, err := strconv.Atoi(strings.Split(p, "/")[2])
				if err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					c.logf("killed leftover shim (pid %d)", pid)
				}
				break
			}
		}
	}
}

// keepPodLogs copies the containers' log files into logs/pods/, so they
// outlive the cluster like the components' logs.
func (c *cluster) keepPodLogs() error {
	src := c.state("kubelet", "pod-logs")
	dst := filepath.Join(c.logDir(), "pods")
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// checkStateDir refuses a state dir whose removal would be a disaster.
func (c *cluster) checkStateDir() error {
	d := filepath.Clean(c.cfg.StateDir)
	if !filepath.IsAbs(d) || strings.Count(d, "/") < 2 {
		return fmt.Errorf("state dir %q must be an absolute path at least two levels deep, such as /var/lib/skiff-cluster", c.cfg.StateDir)
	}
	return nil
}

// removeStateKeepingLogs empties the state dir except for logs/.
func (c *cluster) removeStateKeepingLogs() error {
	entries, err := os.ReadDir(c.cfg.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() == "logs" || e.Name() == "logs-previous" {
			continue
		}
		if err := os.RemoveAll(c.state(e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// printLogs prints each component's log (the last lines lines; all if
// lines <= 0), for CI to show on failure.
func (c *cluster) printLogs(lines int) error {
	files, err := filepath.Glob(filepath.Join(c.logDir(), "*.log"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no logs in %s", c.logDir())
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".log")
		text := c.logTail(name, lines)
		if lines <= 0 {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			text = string(data)
		}
		fmt.Fprintf(c.out, "===== %s (%s) =====\n%s\n", name, f, strings.TrimRight(text, "\n"))
	}
	return nil
}
