package project

import (
	"errors"
	"strings"
	"testing"
)

const withEnvs = `apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/dev
build:
  platforms: [linux/amd64]
workloads:
  - name: orders
    kind: service
    lang: go
    env: {LOG_LEVEL: info, REGION: eu}
    config: {GREETING: hello}
    resources: {cpu: 100m}
  - name: payments
    kind: function
    lang: go
environments:
  staging:
    namespace: shop-staging
  prod:
    registry: registry.example.com/acme
    namespace: shop-prod
    context: prod-cluster
    platforms: [linux/amd64, linux/arm64]
    values: {podAnnotations: {team: shop}}
    workloads:
      orders: {replicas: 3, env: {LOG_LEVEL: warn}, config: {GREETING: hi}, resources: {cpu: 500m, memory: 256Mi}}
`

func TestForEnv(t *testing.T) {
	top, err := Parse([]byte(withEnvs))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := top.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := prod.Workload("orders")
	if prod.Env != "prod" || prod.Registry != "registry.example.com/acme" || prod.Namespace != "shop-prod" || prod.Context != "prod-cluster" ||
		strings.Join(prod.Build.Platforms, ",") != "linux/amd64,linux/arm64" || prod.Values["podAnnotations"] == nil {
		t.Errorf("prod = %+v", prod)
	}
	if *o.Replicas != 3 || o.Env["LOG_LEVEL"] != "warn" || o.Env["REGION"] != "eu" || o.Config["GREETING"] != "hi" ||
		o.Resources.CPU != "500m" || o.Resources.Memory != "256Mi" {
		t.Errorf("prod orders = %+v (resources %+v)", o, o.Resources)
	}
	// The top level is untouched by resolving an environment.
	to, _ := top.Workload("orders")
	if *to.Replicas != 1 || to.Env["LOG_LEVEL"] != "info" || to.Resources.CPU != "100m" || top.Namespace != "shop" || top.Env != "" {
		t.Errorf("ForEnv changed the top level: %+v", to)
	}
	staging, err := top.ForEnv("staging")
	if err != nil {
		t.Fatal(err)
	}
	if staging.Namespace != "shop-staging" || staging.Registry != "registry.example.com/dev" || staging.Context != "" {
		t.Errorf("staging = %+v", staging)
	}
	none, err := top.ForEnv("")
	if err != nil || none.Env != "" || none.Namespace != "shop" {
		t.Errorf("ForEnv(\"\") = %+v, %v", none, err)
	}
	_, err = top.ForEnv("nope")
	var unknown *UnknownEnvError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "it has: prod, staging") {
		t.Errorf("ForEnv(nope) = %v", err)
	}
}

func TestEnvironmentErrorsHaveLines(t *testing.T) {
	bad := strings.Replace(withEnvs, "      orders: {replicas: 3", "      nope: {replicas: 1}\n      orders: {replicas: -1", 1)
	bad = strings.Replace(bad, "resources: {cpu: 500m, memory: 256Mi}", "resources: {cpu: lots, memory: 256Mi, memoryLimit: 128Mi}", 1)
	bad = strings.Replace(bad, "namespace: shop-staging", "namespace: Shop_Staging", 1)
	bad = strings.Replace(bad, "platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64, windows/arm64]", 1)
	_, err := Parse([]byte(bad))
	var verrs ValidationErrors
	if !errors.As(err, &verrs) {
		t.Fatalf("err = %v, want validation errors", err)
	}
	want := map[string]int{
		"environments.prod.platforms[1]":                           23,
		"environments.prod.workloads.nope":                         26,
		"environments.prod.workloads.orders.replicas":              27,
		"environments.prod.workloads.orders.resources.cpu":         27,
		"environments.prod.workloads.orders.resources.memoryLimit": 27,
		"environments.staging.namespace":                           18,
	}
	got := map[string]int{}
	for _, e := range verrs {
		got[e.Path] = e.Line
	}
	for path, line := range want {
		if got[path] != line {
			t.Errorf("%s: line %d, want %d (all: %v)", path, got[path], line, err)
		}
	}
	if len(verrs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(verrs), len(want), err)
	}
	// An unknown field of an override is named too.
	_, err = Parse([]byte(strings.Replace(withEnvs, "{replicas: 3,", "{replicas: 3, color: red,", 1)))
	if err == nil || !strings.Contains(err.Error(), "color") {
		t.Errorf("unknown override field: %v", err)
	}
}
