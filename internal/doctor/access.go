package doctor

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Access is one thing deploy does: verb on resource of group.
type Access struct {
	Group, Resource, Verb string
	Namespaced            bool
	// Namespace is where, when not the project's (a Gateway's listeners).
	Namespace string
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Namespace != "" {
		r += " in namespace " + a.Namespace
	}
	return a.Verb + " " + r
}

// helmVerbs are what an upgrade --install, a rollback and an uninstall do
// to each object of a release.
var helmVerbs = []string{"get", "create", "patch", "delete"}

// watched are the kinds skiff lists and watches besides (status, the
// dashboard, the waits), by group/Kind.
var watched = map[string]bool{
	"apps/Deployment":               true,
	"keda.sh/ScaledObject":          true,
	"http.keda.sh/InterceptorRoute": true,
	"http.keda.sh/HTTPScaledObject": true,
	// deploy waits for an exposed workload's route and certificate.
	"gateway.networking.k8s.io/HTTPRoute": true,
	"cert-manager.io/Certificate":         true,
}

// AccessFor is what deploy (through Helm), status, logs and invoke do in
// the project's namespace, for the objects of manifests: the releases as a
// deploy would apply them (rendered, YAML documents). Each kind they hold
// is written as Helm writes it, those skiff watches are listed and
// watched, and a Role's rules must be held by whoever creates it (RBAC's
// escalation check); then what every project needs: Helm's release
// records and skiff secret's values (Secrets), and the pods' logs,
// port-forwards and events; and, for pods with a skiff-relay, reading its
// figures through the pod proxy.
func AccessFor(manifests ...string) ([]Access, error) {
	var out []Access
	add := func(a Access) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	addAll := func(group, resource string, verbs ...string) {
		for _, v := range verbs {
			add(Access{Group: group, Resource: resource, Verb: v, Namespaced: true})
		}
	}
	for _, m := range manifests {
		objs, err := objects(m)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			group, _, _ := strings.Cut(o.APIVersion, "/")
			if !strings.Contains(o.APIVersion, "/") {
				group = "" // the core group: "v1"
			}
			resource := resourceOf(o.Kind)
			addAll(group, resource, helmVerbs...)
			if watched[group+"/"+o.Kind] {
				addAll(group, resource, "list", "watch")
			}
			if o.servesStats() {
				// status -o wide, top and dash read each pod's figures
				// from its skiff-relay through the API server.
				addAll("", "pods/proxy", "get")
			}
			if group == "rbac.authorization.k8s.io" && o.Kind == "Role" {
				for _, r := range o.Rules {
					for _, g := range r.APIGroups {
						for _, res := range r.Resources {
							addAll(g, res, r.Verbs...)
						}
					}
				}
			}
		}
	}
	// Helm's release records and the values of `skiff secret`.
	addAll("", "secrets", "get", "list", "create", "update", "delete")
	addAll("", "pods", "list", "watch")
	addAll("", "pods/log", "get")
	addAll("", "pods/portforward", "create")
	addAll("", "events", "list")
	return out, nil
}

// object is what AccessFor reads of a rendered object.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Rules      []struct {
		APIGroups []string `yaml:"apiGroups"`
		Resources []string `yaml:"resources"`
		Verbs     []string `yaml:"verbs"`
	} `yaml:"rules"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers     []container `yaml:"containers"`
				InitContainers []container `yaml:"initContainers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Ports []struct {
		Name string `yaml:"name"`
	} `yaml:"ports"`
}

// statsPort names the port of skiff-relay's figures (metrics.AdminPort).
const statsPort = "relay-admin"

// servesStats says the object's pods have a skiff-relay whose figures
// skiff reads through the pod proxy.
func (o object) servesStats() bool {
	for _, cs := range [][]container{o.Spec.Template.Spec.InitContainers, o.Spec.Template.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Name == statsPort {
					return true
				}
			}
		}
	}
	return false
}

// objects reads the objects of a stream of YAML documents (empty ones and
// comments skipped).
func objects(manifest string) ([]object, error) {
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the rendered chart: %w", err)
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
}

// resourceOf is the resource of a kind, as the API server names it: the
// kind in lower case, in the plural.
func resourceOf(kind string) string {
	r := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(r, "s"), strings.HasSuffix(r, "x"), strings.HasSuffix(r, "ch"), strings.HasSuffix(r, "sh"):
		return r + "es"
	case strings.HasSuffix(r, "y") && !strings.HasSuffix(r, "ay") && !strings.HasSuffix(r, "ey") && !strings.HasSuffix(r, "oy"):
		return strings.TrimSuffix(r, "y") + "ies"
	}
	return r + "s"
}
