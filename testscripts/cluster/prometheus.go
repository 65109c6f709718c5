package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// prometheusBin is Debian's prometheus (the package's service is kept from
// starting: up runs it as one of the cluster's processes).
const prometheusBin = "/usr/bin/prometheus"

// prometheusConfig scrapes, every second, the targets podsd writes:
// every pod annotated the usual way (prometheus.io/scrape "true", /port,
// /path), as skiff's chart annotates the pods of its workloads, on its pod
// IP, which the host (the node) reaches. Debian's prometheus is built
// without kubernetes_sd_configs, so the harness discovers the pods itself
// and hands them over in a file_sd file.
const prometheusConfig = `# Written by skiff cluster up.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kubernetes-pods
    file_sd_configs:
      - files: [%s]
        refresh_interval: 1s
`

// startPrometheus runs Prometheus on a free loopback port (written to the
// state dir for env) and waits until it is ready.
func (c *cluster) startPrometheus(ctx context.Context) error {
	if _, err := os.Stat(prometheusBin); err != nil {
		return fmt.Errorf("%s: %w; install Debian's prometheus package (ci.sh install)", prometheusBin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.MkdirAll(c.state("prometheus", "data"), 0o755); err != nil {
		return err
	}
	config, targets := c.state("prometheus", "prometheus.yml"), c.state("prometheus", "targets.json")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(prometheusConfig, targets)), 0o644); err != nil {
		return err
	}
	// podsd is this program, kept in the state dir (go run removes its
	// own build when up returns).
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sd := c.state("prometheus", "podsd")
	if err := copyFile(self, sd, 0o755); err != nil {
		return err
	}
	if _, err := c.start("prometheus-sd", nil, sd, "-state", c.cfg.StateDir, "podsd"); err != nil {
		return err
	}
	if err := os.WriteFile(c.state("prometheus", "addr"), []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	rec, err := c.start("prometheus", nil, prometheusBin,
		"--config.file="+config,
		"--storage.tsdb.path="+c.state("prometheus", "data"),
		"--storage.tsdb.retention.time=1d",
		"--web.listen-address="+addr,
		"--log.level=warn")
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "prometheus", rec, 60*time.Second, httpOK("http://"+addr+"/-/ready")); err != nil {
		return err
	}
	c.logf("prometheus scrapes the annotated pods every second (found by podsd); its API at http://%s", addr)
	return nil
}

// prometheusURL is the running cluster's Prometheus, "" when up did not
// start one.
func (c *cluster) prometheusURL() string {
	b, err := os.ReadFile(c.state("prometheus", "addr"))
	if err != nil {
		return ""
	}
	return "http://" + strings.TrimSpace(string(b))
}

// podsd writes the scrape targets of the annotated pods to the state
// dir's prometheus/targets.json, every second, until ctx ends: Prometheus'
// file_sd reads it.
func (c *cluster) podsd(ctx context.Context) error {
	cs, err := c.client()
	if err != nil {
		return err
	}
	out := c.state("prometheus", "targets.json")
	var last []byte
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil {
			b, _ := json.MarshalIndent(scrapeTargets(pods.Items), "", "  ")
			if !bytes.Equal(b, last) {
				if err := writeAtomic(out, b); err != nil {
					return err
				}
				last = b
			}
		} else if ctx.Err() == nil {
			c.logf("podsd: listing pods: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// targetGroup is one entry of a file_sd file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// scrapeTargets are the running pods annotated prometheus.io/scrape
// "true", at prometheus.io/port (required) and /path (default /metrics),
// labelled with their namespace, name and app.kubernetes.io/name.
func scrapeTargets(pods []corev1.Pod) []targetGroup {
	out := []targetGroup{}
	for _, p := range pods {
		a := p.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] == "" || p.Status.PodIP == "" ||
			p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		path := a["prometheus.io/path"]
		if path == "" {
			path = "/metrics"
		}
		labels := map[string]string{"__metrics_path__": path, "namespace": p.Namespace, "pod": p.Name}
		if w := p.Labels["app.kubernetes.io/name"]; w != "" {
			labels["workload"] = w
		}
		out = append(out, targetGroup{Targets: []string{net.JoinHostPort(p.Status.PodIP, a["prometheus.io/port"])}, Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Targets[0] < out[j].Targets[0] })
	return out
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}
