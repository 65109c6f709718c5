package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Environment is one place the project is deployed to (dev, staging,
// prod...): what differs there from the top level of skiff.yaml.
type Environment struct {
	Registry string `json:"registry,omitempty" yaml:"registry,omitempty"`
	// RegistryAuth replaces the top-level registryAuth.
	RegistryAuth string `json:"registryAuth,omitempty" yaml:"registryAuth,omitempty"`
	Namespace    string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	// Context is the kubeconfig context of the environment's cluster.
	Context   string   `json:"context,omitempty" yaml:"context,omitempty"`
	Platforms []string `json:"platforms,omitempty" yaml:"platforms,omitempty"`
	// Values are chart values for every workload.
	Values map[string]any `json:"values,omitempty" yaml:"values,omitempty"`
	// Workloads override fields of workloads, by name.
	Workloads map[string]WorkloadOverride `json:"workloads,omitempty" yaml:"workloads,omitempty"`
	// Domain, Gateway and TLS replace the top level's for exposed workloads.
	Domain  string   `json:"domain,omitempty" yaml:"domain,omitempty"`
	Gateway *Gateway `json:"gateway,omitempty" yaml:"gateway,omitempty"`
	TLS     *TLS     `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Events replaces the top level's bus, credentials, signing key, TLS
	// and retention where it sets them (the stream and the relay image
	// stay the project's).
	Events *Events `json:"events,omitempty" yaml:"events,omitempty"`
	// Signing and Verify replace the top-level ones.
	Signing *KeyRef `json:"signing,omitempty" yaml:"signing,omitempty"`
	Verify  *KeyRef `json:"verify,omitempty" yaml:"verify,omitempty"`
	// Metrics' fields replace the top level's, each when set.
	Metrics *Metrics `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	// Network's fields replace the top level's where written.
	Network *Network `json:"network,omitempty" yaml:"network,omitempty"`
}

// WorkloadOverride is what an environment changes of one workload: maps
// are merged key by key over the workload's, the rest replaces it.
type WorkloadOverride struct {
	Replicas  *int              `json:"replicas,omitempty" yaml:"replicas,omitempty"`
	Env       map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	Config    map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	Resources *Resources        `json:"resources,omitempty" yaml:"resources,omitempty"`
	Autoscale *Autoscale        `json:"autoscale,omitempty" yaml:"autoscale,omitempty"`
	// Scale replaces the workload's scale, and its autoscale: the two are
	// alternatives, so an environment that sets one drops the other.
	Scale *Scale `json:"scale,omitempty" yaml:"scale,omitempty"`
}

// Resources are a workload's resource requests (and memory limit).
type Resources struct {
	CPU         string `json:"cpu,omitempty" yaml:"cpu,omitempty"`
	Memory      string `json:"memory,omitempty" yaml:"memory,omitempty"`
	MemoryLimit string `json:"memoryLimit,omitempty" yaml:"memoryLimit,omitempty"`
}

// UnknownEnvError says the environment asked for is not in skiff.yaml.
type UnknownEnvError struct {
	Name  string
	Known []string
}

func (e *UnknownEnvError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("environment %q is not defined: skiff.yaml has no environments; add one under `environments:` (see docs/manifest.md)", e.Name)
	}
	return fmt.Sprintf("environment %q is not defined in skiff.yaml; it has: %s", e.Name, strings.Join(e.Known, ", "))
}

// EnvironmentNames lists the environments of the project, sorted.
func (p *Project) EnvironmentNames() []string {
	return slices.Sorted(maps.Keys(p.Environments))
}

// ForEnv returns the project as environment name sees it: registry,
// namespace, context, platforms, chart values and workload fields
// overridden where the environment says so. "" is the top level. The
// result is a copy: p is not changed. Every command reads its project
// through ForEnv, so they all agree.
func (p *Project) ForEnv(name string) (*Project, error) {
	out := *p
	out.Workloads = make([]Workload, len(p.Workloads))
	for i, w := range p.Workloads {
		out.Workloads[i] = w.clone()
	}
	out.Build.Platforms = slices.Clone(p.Build.Platforms)
	if name == "" {
		return &out, nil
	}
	e, ok := p.Environments[name]
	if !ok {
		return nil, &UnknownEnvError{Name: name, Known: p.EnvironmentNames()}
	}
	out.Env = name
	if e.Registry != "" {
		out.Registry = e.Registry
	}
	if e.RegistryAuth != "" {
		out.RegistryAuth = e.RegistryAuth
	}
	if e.Namespace != "" {
		out.Namespace = e.Namespace
	}
	out.Context = e.Context
	if len(e.Platforms) > 0 {
		out.Build.Platforms = slices.Clone(e.Platforms)
	}
	out.Values = e.Values
	if e.Domain != "" {
		out.Domain = e.Domain
	}
	if e.Gateway != nil {
		g := *e.Gateway
		out.Gateway = &g
	}
	if e.TLS != nil {
		t := *e.TLS
		if t.Mode == TLSAuto && t.Issuer == "" && p.TLS != nil {
			// auto: with the top level's issuer.
			t.Issuer, t.Kind = p.TLS.Issuer, p.TLS.Kind
		}
		out.TLS = &t
	}
	if e.Events != nil {
		out.Events = p.Events.overlay(e.Events)
	}
	if e.Signing != nil {
		out.Signing = e.Signing
	}
	if e.Verify != nil {
		out.Verify = e.Verify
	}
	if e.Metrics != nil {
		m := Metrics{}
		if p.Metrics != nil {
			m = *p.Metrics
		}
		if e.Metrics.Proxy != nil {
			m.Proxy = e.Metrics.Proxy
		}
		if e.Metrics.Prometheus != "" {
			m.Prometheus = e.Metrics.Prometheus
		}
		out.Metrics = &m
	}
	out.Network = mergeNetwork(p.Network, e.Network)
	for i := range out.Workloads {
		o, ok := e.Workloads[out.Workloads[i].Name]
		if !ok {
			continue
		}
		w := &out.Workloads[i]
		if o.Replicas != nil {
			r := *o.Replicas
			w.Replicas = &r
		}
		w.Env = mergeStrings(w.Env, o.Env)
		w.Config = mergeStrings(w.Config, o.Config)
		if o.Resources != nil {
			r := *o.Resources
			w.Resources = &r
		}
		if o.Autoscale != nil {
			a := *o.Autoscale
			if a.CPUPercent == 0 {
				a.CPUPercent = defaultCPUPercent
			}
			w.Autoscale = &a
			w.Scale = nil
		}
		if o.Scale != nil {
			sc := *o.Scale
			sc.applyDefaults()
			w.Scale = &sc
			w.Autoscale = nil
		}
	}
	return &out, nil
}

func (w Workload) clone() Workload {
	w.Env = maps.Clone(w.Env)
	w.Config = maps.Clone(w.Config)
	w.DependsOn = slices.Clone(w.DependsOn)
	if w.Replicas != nil {
		r := *w.Replicas
		w.Replicas = &r
	}
	if w.Autoscale != nil {
		a := *w.Autoscale
		w.Autoscale = &a
	}
	if w.Resources != nil {
		r := *w.Resources
		w.Resources = &r
	}
	if w.Scale != nil {
		sc := *w.Scale
		w.Scale = &sc
	}
	w.Triggers = slices.Clone(w.Triggers)
	if w.Expose != nil {
		e := *w.Expose
		if e.TLS != nil {
			t := *e.TLS
			e.TLS = &t
		}
		if e.Ingress != nil {
			in := *e.Ingress
			e.Ingress = &in
		}
		w.Expose = &e
	}
	if w.Delivery != nil {
		d := *w.Delivery
		if d.Retries != nil {
			r := *d.Retries
			d.Retries = &r
		}
		w.Delivery = &d
	}
	return w
}

func mergeStrings(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// validateEnvironments checks the environments of a defaulted project.
func (p *Project) validateEnvironments(add func(path, msg, hint string)) {
	for _, n := range slices.Sorted(maps.Keys(p.Environments)) {
		e := p.Environments[n]
		at := "environments." + n
		if why := ValidName(n); why != "" {
			add(at, "name "+why, nameHint)
		}
		if e.Namespace != "" {
			if why := ValidName(e.Namespace); why != "" {
				add(at+".namespace", why, nameHint)
			}
		}
		if e.RegistryAuth != "" && !slices.Contains(RegistryAuths(), e.RegistryAuth) {
			add(at+".registryAuth", describeBad(e.RegistryAuth), "use one of: "+strings.Join(RegistryAuths(), ", "))
		}
		if why := CheckRegistry(e.Registry); why != "" {
			add(at+".registry", why, RegistryHint)
		}
		for i, pl := range e.Platforms {
			checkPlatform(fmt.Sprintf("%s.platforms[%d]", at, i), pl, add)
		}
		if e.Domain != "" {
			if why := checkHost(e.Domain, false); why != "" {
				add(at+".domain", why, hostHint)
			}
		}
		checkGateway(at+".gateway", e.Gateway, add)
		checkTLS(at+".tls", e.TLS, p.TLS != nil && p.TLS.Issuer != "", add)
		if e.Events != nil {
			if e.Events.Stream != "" || e.Events.RelayImage != "" {
				add(at+".events", "sets stream or relayImage", "set them at the top level: an environment may change bus, credentials, signingKey, tls and retention")
			}
			checkEventsFields(at+".events", e.Events, add)
		}
		checkKeyRef(at+".signing", e.Signing, add)
		checkKeyRef(at+".verify", e.Verify, add)
		checkMetrics(at+".metrics", e.Metrics, add)
		for _, wn := range slices.Sorted(maps.Keys(e.Workloads)) {
			o := e.Workloads[wn]
			wat := at + ".workloads." + wn
			if _, ok := p.Workload(wn); !ok {
				add(wat, "is not a workload of this project", "use one of: "+strings.Join(p.WorkloadNames(), ", "))
				continue
			}
			checkOverride(wat, o, add)
		}
	}
}

// checkPlatform checks an OS/ARCH[/VARIANT] platform string.
func checkPlatform(at, s string, add func(path, msg, hint string)) {
	pl, err := v1.ParsePlatform(s)
	switch {
	case err != nil || pl.OS == "" || pl.Architecture == "":
		add(at, fmt.Sprintf("%q is not a platform", s), "use OS/ARCH[/VARIANT] such as linux/amd64 or linux/arm64")
	case pl.OS != "linux":
		add(at, fmt.Sprintf("%q is not a Linux platform", s), "skiff builds Linux images only; use linux/ARCH")
	}
}

func checkOverride(at string, o WorkloadOverride, add func(path, msg, hint string)) {
	checkMaps(at, o.Env, o.Config, add)
	if o.Replicas != nil && *o.Replicas < 0 {
		add(at+".replicas", fmt.Sprintf("%d is negative", *o.Replicas), "use 0 or more")
	}
	if o.Autoscale != nil {
		a := *o.Autoscale
		if a.CPUPercent == 0 {
			a.CPUPercent = defaultCPUPercent
		}
		checkAutoscale(at+".autoscale", &a, add)
	}
	if o.Autoscale != nil && o.Scale != nil {
		add(at+".scale", "and autoscale are both set", scaleOrAutoscale)
	}
	if o.Scale != nil {
		sc := *o.Scale
		sc.applyDefaults()
		checkScale(at+".scale", &sc, add)
	}
	checkResources(at+".resources", o.Resources, add)
}

// checkResources checks that each resource is a Kubernetes quantity.
func checkResources(at string, r *Resources, add func(path, msg, hint string)) {
	if r == nil {
		return
	}
	for field, v := range map[string]string{"cpu": r.CPU, "memory": r.Memory, "memoryLimit": r.MemoryLimit} {
		if v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(v); err != nil {
			hint := "use a Kubernetes quantity such as 256Mi or 1Gi"
			if field == "cpu" {
				hint = "use a Kubernetes quantity such as 250m or 1"
			}
			add(at+"."+field, fmt.Sprintf("%q is not a quantity", v), hint)
		}
	}
	if r.Memory != "" && r.MemoryLimit != "" {
		req, err1 := resource.ParseQuantity(r.Memory)
		lim, err2 := resource.ParseQuantity(r.MemoryLimit)
		if err1 == nil && err2 == nil && lim.Cmp(req) < 0 {
			add(at+".memoryLimit", fmt.Sprintf("%s is less than the memory request %s", r.MemoryLimit, r.Memory), "raise memoryLimit to at least memory")
		}
	}
}
