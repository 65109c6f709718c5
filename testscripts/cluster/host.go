package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// hostChanges records every change up makes to the machine outside the
// state dir, as it makes it, so down (or the next up, after a crash) can
// undo exactly those.
type hostChanges struct {
	LoAddrAdded bool `json:"loAddrAdded"`
	// OwnIptables is true when no KUBE-*/CNI-* chains and no kube-router
	// ipsets existed before up: then all such chains and sets are the
	// cluster's, and down removes them.
	OwnIptables bool              `json:"ownIptables"`
	Sysctls     map[string]string `json:"sysctls"`    // key -> value before up
	NewPaths    []string          `json:"newPaths"`   // paths that did not exist before up
	NewCgroups  []string          `json:"newCgroups"` // cgroup dirs that did not exist before up
}

// pathsOthersCreate are host paths that containerd, the CNI plugins or the
// kubelet create outside their configured dirs.
func pathsOthersCreate() []string {
	return []string{
		"/var/lib/cni", "/run/containerd", "/var/log/pods", "/var/log/containers",
		"/run/netns", "/var/lib/kubelet", "/etc/cni", "/opt/cni", "/etc/kubernetes",
		"/var/lib/containerd", "/run/kubernetes",
	}
}

func (c *cluster) hostFile() string { return c.state("host.json") }

func (c *cluster) loadHost() (*hostChanges, error) {
	h := &hostChanges{Sysctls: map[string]string{}}
	data, err := os.ReadFile(c.hostFile())
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("%s: %w", c.hostFile(), err)
	}
	if h.Sysctls == nil {
		h.Sysctls = map[string]string{}
	}
	return h, nil
}

func (c *cluster) saveHost(h *hostChanges) error {
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.hostFile(), data, 0o644)
}

// noteHostState records which of the paths and cgroups others may create
// are absent now, before anything starts.
func (c *cluster) noteHostState(h *hostChanges) error {
	for _, p := range pathsOthersCreate() {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			h.NewPaths = append(h.NewPaths, p)
		}
	}
	h.OwnIptables = len(clusterChains()) == 0 && len(kubeRouterSets()) == 0
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		for _, name := range []string{"kubepods", "kubepods.slice"} {
			p := filepath.Join(root, name)
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				h.NewCgroups = append(h.NewCgroups, p)
			}
		}
	}
	return c.saveHost(h)
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (string, error) {
	data, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(data)), err
}

// setSysctl sets key, first recording its value before up.
func (c *cluster) setSysctl(h *hostChanges, key, val string) error {
	old, err := readSysctl(key)
	if err != nil {
		return err
	}
	if _, seen := h.Sysctls[key]; !seen {
		h.Sysctls[key] = old
		if err := c.saveHost(h); err != nil {
			return err
		}
	}
	if old == val {
		return nil
	}
	return os.WriteFile(sysctlPath(key), []byte(val), 0o644)
}

// recordSysctls remembers values that a component (the kubelet) may change
// by itself.
func (c *cluster) recordSysctls(h *hostChanges, keys ...string) error {
	for _, k := range keys {
		if _, seen := h.Sysctls[k]; seen {
			continue
		}
		v, err := readSysctl(k)
		if err != nil {
			continue // absent on this kernel
		}
		h.Sysctls[k] = v
	}
	return c.saveHost(h)
}

func (c *cluster) addLoAddr(h *hostChanges) error {
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", "lo").Output()
	if err != nil {
		return fmt.Errorf("ip addr show: %w", err)
	}
	if bytes.Contains(out, []byte(" "+nodeIP+"/32 ")) {
		return nil
	}
	h.LoAddrAdded = true
	if err := c.saveHost(h); err != nil {
		return err
	}
	return runQuiet("ip", "addr", "add", nodeIP+"/32", "dev", "lo")
}

func runQuiet(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// undoHost reverts what h records, then the iptables chains the cluster's
// components add. Every step is tried; the errors are joined.
func (c *cluster) undoHost(h *hostChanges) error {
	var errs []error
	if err := c.unmountUnder(c.cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		if err := runQuiet("ip", "link", "del", bridgeName); err != nil {
			errs = append(errs, err)
		}
	}
	if h.OwnIptables {
		if err := cleanIptables(); err != nil {
			errs = append(errs, err)
		}
		if err := destroyKubeRouterSets(); err != nil {
			errs = append(errs, err)
		}
	} else if left := clusterChains(); len(left) > 0 {
		c.logf("warning: KUBE-*/CNI-* iptables chains existed before up, so down leaves them all: %v", left)
	}
	if h.LoAddrAdded {
		if err := runQuiet("ip", "addr", "del", nodeIP+"/32", "dev", "lo"); err != nil && !strings.Contains(err.Error(), "Cannot assign") {
			errs = append(errs, err)
		}
	}
	for k, v := range h.Sysctls {
		if cur, err := readSysctl(k); err == nil && cur != v {
			if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s=%s: %w", k, v, err))
			}
		}
	}
	for _, cg := range h.NewCgroups {
		if err := removeCgroupTree(cg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range h.NewPaths {
		if err := c.unmountUnder(p); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func (c *cluster) unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	prefix := filepath.Clean(dir) + "/"
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if strings.HasPrefix(mp, prefix) || mp == filepath.Clean(dir) {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroupTree kills what is left in a cgroup tree, waits for it to
// go, and removes the tree's dirs, children first.
func removeCgroupTree(root string) error {
	if _, err := os.Stat(root); err != nil {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		busy := false
		for _, d := range dirs {
			if killCgroupProcs(d) {
				busy = true
			}
		}
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var errs []error
	for _, d := range dirs {
		var err error
		for {
			err = syscall.Rmdir(d)
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// killCgroupProcs SIGKILLs the processes in one cgroup dir and reports
// whether there were any.
func killCgroupProcs(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return false
	}
	pids := strings.Fields(string(data))
	for _, f := range pids {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids) > 0
}

// isClusterChain tells the chain names the cluster's components use.
func isClusterChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// clusterChains lists the KUBE-*/CNI-* chains present now, as
// "binary/table/chain".
func clusterChains() []string {
	var found []string
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				if args := splitRule(line); len(args) == 2 && args[0] == "-N" && isClusterChain(args[1]) {
					found = append(found, bin+"/"+table+"/"+args[1])
				}
			}
		}
	}
	return found
}

// cleanIptables removes the chains whose names the cluster's components use
// (KUBE-* from kube-proxy and the kubelet, CNI-* from the CNI plugins) and
// the rules that jump to them, in IPv4 and IPv6.
func cleanIptables() error {
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue // table absent
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				args := splitRule(line)
				if len(args) < 2 {
					continue
				}
				ours := isClusterChain
				switch args[0] {
				case "-N":
					if ours(args[1]) {
						chains = append(chains, args[1])
					}
				case "-A":
					if ours(args[1]) {
						continue // goes with its chain
					}
					for i, a := range args {
						if (a == "-j" || a == "-g") && i+1 < len(args) && ours(args[i+1]) {
							del := append([]string{"-w", "-t", table, "-D"}, args[1:]...)
							if err := runQuiet(bin, del...); err != nil {
								errs = append(errs, err)
							}
							break
						}
					}
				}
			}
			for _, ch := range chains {
				_ = runQuiet(bin, "-w", "-t", table, "-F", ch)
			}
			for _, ch := range chains {
				if err := runQuiet(bin, "-w", "-t", table, "-X", ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits one line of `iptables -S` into arguments, honouring the
// double quotes iptables puts around comments.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote = !inQuote
			have = true
		case (ch == ' ' || ch == '\t') && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
