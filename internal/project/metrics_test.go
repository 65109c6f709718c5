package project

import (
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	p, err := Parse([]byte(valid + `metrics: {prometheus: "http://prometheus.monitoring:9090"}
environments:
  prod:
    metrics: {proxy: false}
  dev: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Metrics.ProxyOn() || p.Metrics.PrometheusURL() != "http://prometheus.monitoring:9090" {
		t.Fatalf("top level: %+v", p.Metrics)
	}
	prod, err := p.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Metrics.ProxyOn() || prod.Metrics.PrometheusURL() != "http://prometheus.monitoring:9090" {
		t.Errorf("prod: proxy off, Prometheus kept: %+v", prod.Metrics)
	}
	if p.Metrics.ProxyOn() != true {
		t.Error("ForEnv changed the top level's metrics")
	}
	var none *Metrics
	if !none.ProxyOn() || none.PrometheusURL() != "" {
		t.Error("without metrics: the proxy is on, no Prometheus")
	}
}

func TestMetricsErrors(t *testing.T) {
	head := "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads: [{name: x, kind: service, lang: go}]\n"
	for _, tc := range []struct{ yaml, want string }{
		{"metrics: {prometheus: \"prometheus:9090\"}\n", `line 4: metrics.prometheus "prometheus:9090" is not an http or https URL`},
		{"metrics: {prometheus: \"http://\"}\n", "has no host"},
		{"environments:\n  prod:\n    metrics: {prometheus: \"ftp://p\"}\n", "line 6: environments.prod.metrics.prometheus"},
	} {
		_, err := Parse([]byte(head + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
