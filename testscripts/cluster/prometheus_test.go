package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestScrapeTargets(t *testing.T) {
	ann := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9091", "prometheus.io/path": "/metrics"}
	pod := func(name, ip string, phase corev1.PodPhase, a map[string]string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: a,
			Labels: map[string]string{"app.kubernetes.io/name": "api"}}, Status: corev1.PodStatus{PodIP: ip, Phase: phase}}
	}
	got := scrapeTargets([]corev1.Pod{
		pod("api-2", "198.18.0.12", corev1.PodRunning, ann),
		pod("api-1", "198.18.0.11", corev1.PodRunning, ann),
		pod("starting", "", corev1.PodPending, ann),
		pod("done", "198.18.0.13", corev1.PodSucceeded, ann),
		pod("plain", "198.18.0.14", corev1.PodRunning, nil),
		pod("noport", "198.18.0.15", corev1.PodRunning, map[string]string{"prometheus.io/scrape": "true"}),
		pod("default-path", "198.18.0.16", corev1.PodRunning, map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}),
	})
	if len(got) != 3 || got[0].Targets[0] != "198.18.0.11:9091" || got[1].Targets[0] != "198.18.0.12:9091" || got[2].Targets[0] != "198.18.0.16:8080" {
		t.Fatalf("targets: %+v", got)
	}
	if l := got[0].Labels; l["pod"] != "api-1" || l["namespace"] != "shop" || l["workload"] != "api" || l["__metrics_path__"] != "/metrics" {
		t.Errorf("labels: %v", l)
	}
	if got[2].Labels["__metrics_path__"] != "/metrics" {
		t.Errorf("default path: %v", got[2].Labels)
	}
}
