package doctor

import (
	"slices"
	"testing"
)

func TestAccessForReadsTheKindsOfTheManifests(t *testing.T) {
	manifest := `# skiff render: workload orders
---
apiVersion: v1
kind: Service
metadata: {name: orders}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders}
spec:
  template:
    spec:
      initContainers:
        - name: skiff-relay
          ports: [{name: relay-admin, containerPort: 9091}]
      containers:
        - name: app
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: orders}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "watch"]
`
	got, err := AccessFor(manifest, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: orders}\n")
	if err != nil {
		t.Fatal(err)
	}
	ns := func(group, resource, verb string) Access {
		return Access{Group: group, Resource: resource, Verb: verb, Namespaced: true}
	}
	for _, want := range []Access{
		ns("", "services", "create"), ns("", "services", "delete"),
		ns("apps", "deployments", "patch"), ns("apps", "deployments", "watch"),
		ns("networking.k8s.io", "networkpolicies", "create"),
		ns("gateway.networking.k8s.io", "httproutes", "create"),
		ns("rbac.authorization.k8s.io", "roles", "create"),
		// Whoever creates the Role must hold what it grants.
		ns("", "configmaps", "watch"),
		// Every project: Helm's records, logs, port-forwards.
		ns("", "secrets", "list"), ns("", "pods/log", "get"), ns("", "pods/portforward", "create"),
		// status -o wide reads its skiff-relay's figures.
		ns("", "pods/proxy", "get"),
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no %v in %v", want, got)
		}
	}
	for _, not := range []Access{ns("", "services", "watch"), ns("batch", "cronjobs", "create"), ns("keda.sh", "scaledobjects", "create")} {
		if slices.Contains(got, not) {
			t.Errorf("%v asked for, though nothing rendered needs it", not)
		}
	}
	seen := map[Access]bool{}
	for _, a := range got {
		if seen[a] {
			t.Errorf("%v twice", a)
		}
		seen[a] = true
	}
}

func TestAccessForABrokenManifest(t *testing.T) {
	if _, err := AccessFor("kind: [Service\n"); err == nil {
		t.Error("no error for YAML that does not parse")
	}
}

func TestResourceOf(t *testing.T) {
	for kind, want := range map[string]string{
		"Deployment": "deployments", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies",
		"Gateway": "gateways", "HorizontalPodAutoscaler": "horizontalpodautoscalers", "ScaledObject": "scaledobjects",
	} {
		if got := resourceOf(kind); got != want {
			t.Errorf("resourceOf(%s) = %s, want %s", kind, got, want)
		}
	}
}

// deploy watches an exposed workload's route and certificate: both are
// listed and watched besides what Helm does to them.
func TestAccessForTheEdge(t *testing.T) {
	got, err := AccessFor("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n---\napiVersion: cert-manager.io/v1\nkind: Certificate\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []Access{
		{Group: "gateway.networking.k8s.io", Resource: "httproutes", Verb: "watch", Namespaced: true},
		{Group: "cert-manager.io", Resource: "certificates", Verb: "list", Namespaced: true},
		{Group: "gateway.networking.k8s.io", Resource: "referencegrants", Verb: "create", Namespaced: true},
	} {
		if !slices.Contains(got, want) {
			t.Errorf("AccessFor lacks %v", want)
		}
	}
	if slices.Contains(got, Access{Group: "gateway.networking.k8s.io", Resource: "referencegrants", Verb: "watch", Namespaced: true}) {
		t.Error("ReferenceGrants are watched; nothing watches them")
	}
}

// Reading the pods' figures needs the pod proxy only where a skiff-relay
// serves them.
func TestAccessForPodProxyOnlyWithARelay(t *testing.T) {
	got, err := AccessFor("apiVersion: apps/v1\nkind: Deployment\nspec: {template: {spec: {containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if proxy := (Access{Resource: "pods/proxy", Verb: "get", Namespaced: true}); slices.Contains(got, proxy) {
		t.Errorf("%v asked for, though no pod has a skiff-relay", proxy)
	}
}
