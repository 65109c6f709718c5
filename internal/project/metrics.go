package project

import (
	"fmt"
	"net/url"
)

// Metrics is how skiff measures the workloads (skiff.yaml `metrics`, top
// level or per environment).
type Metrics struct {
	// Proxy puts skiff-relay in front of every workload's port, where it
	// counts requests, errors, latency and cold starts whatever the code
	// (docs/observe.md). On unless set to false.
	Proxy *bool `json:"proxy,omitempty" yaml:"proxy,omitempty"`
	// Prometheus is the URL of a Prometheus that scrapes the workloads:
	// status, top and dash query it instead of the pods.
	Prometheus string `json:"prometheus,omitempty" yaml:"prometheus,omitempty"`
}

// ProxyOn says whether workloads get the metrics proxy.
func (m *Metrics) ProxyOn() bool { return m == nil || m.Proxy == nil || *m.Proxy }

// PrometheusURL is the Prometheus to query, "" for none.
func (m *Metrics) PrometheusURL() string {
	if m == nil {
		return ""
	}
	return m.Prometheus
}

const prometheusHint = "set the URL of Prometheus' HTTP API, e.g. http://prometheus.monitoring:9090"

// checkMetrics checks m, at path at.
func checkMetrics(at string, m *Metrics, add func(path, msg, hint string)) {
	if m == nil || m.Prometheus == "" {
		return
	}
	if why := CheckPrometheusURL(m.Prometheus); why != "" {
		add(at+".prometheus", why, prometheusHint)
	}
}

// CheckPrometheusURL says why s is not a Prometheus URL skiff can query,
// "" when it is one (also for --prometheus).
func CheckPrometheusURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q is not an http or https URL", s)
	case u.Host == "":
		return fmt.Sprintf("%q has no host", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q has a query or fragment", s)
	}
	return ""
}
