package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// prometheusBin is Debian's prometheus (the package's service is kept from
// starting: up runs it as one of the cluster's processes).
const prometheusBin = "/usr/bin/prometheus"

// prometheusConfig scrapes, every second, every pod annotated the usual
// way (prometheus.io/scrape "true", /port, /path), as skiff's chart
// annotates the pods of its workloads; it finds them through the API
// server with the admin kubeconfig and reaches them on their pod IPs
// from the host (the node).
const prometheusConfig = `# Written by skiff cluster up.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: %s
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        regex: "true"
        action: keep
      - source_labels: [__meta_kubernetes_pod_phase]
        regex: Pending|Succeeded|Failed|Unknown
        action: drop
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        regex: (.+)
        target_label: __metrics_path__
      # Every container port of a pod is a target; rewritten to the
      # annotated port they are one, and Prometheus scrapes it once.
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: ([^:]+)(?::\d+)?;(\d+)
        replacement: $1:$2
        target_label: __address__
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name]
        target_label: workload
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
	config := c.state("prometheus", "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(prometheusConfig, c.kubeconfig())), 0o644); err != nil {
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
	c.logf("prometheus scrapes the annotated pods every second; its API at http://%s", addr)
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
