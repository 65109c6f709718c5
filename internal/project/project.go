// Package project reads, validates and writes skiff.yaml, the manifest of a
// skiff project and its workloads.
package project

import (
	"sort"
	"strings"
	"time"
)

// FileName is the manifest's name in a project's root folder.
const FileName = "skiff.yaml"

// APIVersion is the manifest schema this skiff writes and reads.
const APIVersion = "skiff.dev/v1alpha1"

// Kinds of workload.
const (
	KindFunction = "function"
	KindService  = "service"
)

// Languages a workload can be written in.
const (
	LangGo         = "go"
	LangNode       = "node"
	LangTypeScript = "typescript"
	LangPython     = "python"
)

// Defaults filled in by Load for fields left out.
const (
	DefaultTemplate = "http"
	DefaultPort     = 8080
	DefaultReplicas = 1
	DefaultHealth   = "/healthz"
	DefaultReady    = "/readyz"

	defaultCPUPercent = 80
)

// How pods get to pull from the registry (registryAuth).
const (
	// RegistryAuthAuto: deploy tries an anonymous pull; when the registry
	// refuses it, as RegistryAuthPullSecret.
	RegistryAuthAuto = "auto"
	// RegistryAuthPullSecret: deploy keeps a pull Secret in the namespace
	// from the credentials skiff pushes with, and the pods use it.
	RegistryAuthPullSecret = "pull-secret"
	// RegistryAuthNone: the nodes pull without skiff's help.
	RegistryAuthNone = "none"
)

// RegistryAuths lists the values of registryAuth.
func RegistryAuths() []string {
	return []string{RegistryAuthAuto, RegistryAuthNone, RegistryAuthPullSecret}
}

// Kinds returns the workload kinds, sorted.
func Kinds() []string { return []string{KindFunction, KindService} }

// Langs returns the supported languages, sorted.
func Langs() []string { return []string{LangGo, LangNode, LangPython, LangTypeScript} }

// Project is the content of skiff.yaml.
type Project struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	// Name is the project's name: a DNS-1123 label, the prefix of every
	// Helm release and the value of app.kubernetes.io/part-of.
	Name string `json:"name" yaml:"name"`
	// Registry is where built images are pushed, e.g. "registry.example.com/team".
	// Empty means the local OCI layout store.
	Registry string `json:"registry,omitempty" yaml:"registry,omitempty"`
	// RegistryAuth says whether pods need a Secret to pull from Registry:
	// RegistryAuthAuto (the default) asks the registry at deploy time.
	RegistryAuth string `json:"registryAuth,omitempty" yaml:"registryAuth,omitempty"`
	// Namespace is the Kubernetes namespace workloads are deployed to.
	Namespace string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	// Build holds project-wide build settings.
	Build Build `json:"build,omitempty" yaml:"build,omitempty"`
	// Workloads are the functions and services of the project.
	Workloads []Workload `json:"workloads" yaml:"workloads"`
	// Events is the project's event bus, for its workloads' triggers and
	// the events they emit.
	Events *Events `json:"events,omitempty" yaml:"events,omitempty"`
	// Environments are the places the project is deployed to, by name.
	Environments map[string]Environment `json:"environments,omitempty" yaml:"environments,omitempty"`
	// Domain makes the host of a workload exposed without one:
	// <workload>.<project>.<domain>.
	Domain string `json:"domain,omitempty" yaml:"domain,omitempty"`
	// Gateway is the Gateway API Gateway exposed workloads attach to.
	Gateway *Gateway `json:"gateway,omitempty" yaml:"gateway,omitempty"`
	// TLS is where the certificates of exposed workloads come from.
	TLS *TLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Signing signs every image pushed (build --push, deploy) and attests
	// its SBOM and provenance.
	Signing *KeyRef `json:"signing,omitempty" yaml:"signing,omitempty"`
	// Verify makes deploy refuse an image that does not verify with its
	// key, and dev warn.
	Verify *KeyRef `json:"verify,omitempty" yaml:"verify,omitempty"`
	// Metrics is how skiff measures the workloads: the per-pod proxy and
	// the Prometheus it reads.
	Metrics *Metrics `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	// Network is who may reach the workloads and whom they may reach: a
	// NetworkPolicy per workload unless its policy is off.
	Network *Network `json:"network,omitempty" yaml:"network,omitempty"`

	// Set by ForEnv, never read from or written to skiff.yaml:
	// Env is the environment the project was resolved for ("": none).
	Env string `json:"-" yaml:"-"`
	// Context is the environment's kubeconfig context ("": the current one).
	Context string `json:"-" yaml:"-"`
	// Values are the environment's chart values for every workload.
	Values map[string]any `json:"-" yaml:"-"`
	// Warnings are what Load found odd but not wrong, with file and line.
	Warnings []*FieldError `json:"-" yaml:"-"`
	// NoBus are the workloads with triggers when there is no events.bus,
	// with file and line: RequireBus.
	NoBus []*FieldError `json:"-" yaml:"-"`
	// RelayImage is the skiff-relay image the pods run next to the
	// workloads (the metrics proxy, the events' relay): events.relayImage,
	// else $SKIFF_RELAY_IMAGE, else the one this skiff pins; "" when none
	// is known. Set by the command layer.
	RelayImage string `json:"-" yaml:"-"`
}

// KeyRef names a key: a file (relative to the project's folder) or
// "env://NAME", the environment variable NAME holding the PEM.
type KeyRef struct {
	Key string `json:"key" yaml:"key"`
}

// Build holds build settings that apply to every workload unless a workload
// overrides them.
type Build struct {
	// Base maps a language to the base image of its workloads.
	Base map[string]string `json:"base,omitempty" yaml:"base,omitempty"`
	// Platforms to build for, e.g. ["linux/amd64", "linux/arm64"].
	Platforms []string `json:"platforms,omitempty" yaml:"platforms,omitempty"`
}

// Workload is one function or service.
type Workload struct {
	Name     string            `json:"name" yaml:"name"`
	Kind     string            `json:"kind" yaml:"kind"`
	Lang     string            `json:"lang" yaml:"lang"`
	Template string            `json:"template,omitempty" yaml:"template,omitempty"`
	Path     string            `json:"path,omitempty" yaml:"path,omitempty"`
	Port     int               `json:"port,omitempty" yaml:"port,omitempty"`
	Env      map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	Config   map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	// LiveConfig delivers config changes to the running pods (through the
	// API server and the mounted ConfigMap) instead of restarting them.
	LiveConfig bool       `json:"liveConfig,omitempty" yaml:"liveConfig,omitempty"`
	DependsOn  []string   `json:"dependsOn,omitempty" yaml:"dependsOn,omitempty"`
	Replicas   *int       `json:"replicas,omitempty" yaml:"replicas,omitempty"`
	Autoscale  *Autoscale `json:"autoscale,omitempty" yaml:"autoscale,omitempty"`
	// Scale hands the replica count to KEDA and its HTTP add-on: the
	// workload scales on HTTP traffic, down to zero pods.
	Scale     *Scale     `json:"scale,omitempty" yaml:"scale,omitempty"`
	Resources *Resources `json:"resources,omitempty" yaml:"resources,omitempty"`
	// Base overrides the base image for this workload only.
	Base string `json:"base,omitempty" yaml:"base,omitempty"`
	// Health is the HTTP path of the liveness probe.
	Health string `json:"health,omitempty" yaml:"health,omitempty"`
	// Ready is the HTTP path of the readiness probe.
	Ready string `json:"ready,omitempty" yaml:"ready,omitempty"`
	// Triggers are the events and schedules that make the workload run.
	Triggers []Trigger `json:"triggers,omitempty" yaml:"triggers,omitempty"`
	// Delivery is how the triggers' events are delivered to it.
	Delivery *Delivery `json:"delivery,omitempty" yaml:"delivery,omitempty"`
	// Expose gives it a public URL (docs/expose.md).
	Expose *Expose `json:"expose,omitempty" yaml:"expose,omitempty"`
}

// Autoscale configures a HorizontalPodAutoscaler.
type Autoscale struct {
	Min        int `json:"min" yaml:"min"`
	Max        int `json:"max" yaml:"max"`
	CPUPercent int `json:"cpuPercent,omitempty" yaml:"cpuPercent,omitempty"`
}

// Scale is scaling on HTTP traffic through the KEDA HTTP add-on's
// interceptor, which holds requests while the workload has no pods.
type Scale struct {
	// Min is the fewest pods; 0 (the default) lets the workload sit idle.
	Min int `json:"min" yaml:"min"`
	// Max is the most pods.
	Max int `json:"max,omitempty" yaml:"max,omitempty"`
	// Idle is how long without requests before scaling in, and to zero:
	// a Go duration such as 30s or 2m.
	Idle string `json:"idle,omitempty" yaml:"idle,omitempty"`
	// Concurrency is the target of requests in flight per pod.
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// RPS is the target of requests per second per pod (over idle, at
	// most a minute).
	RPS int `json:"rps,omitempty" yaml:"rps,omitempty"`
}

// Defaults of scale.
const (
	DefaultScaleMax         = 10
	DefaultScaleIdle        = "5m"
	DefaultScaleConcurrency = 100
)

// IdleDuration is Idle parsed; the scale must be valid.
func (s *Scale) IdleDuration() time.Duration {
	d, _ := time.ParseDuration(s.Idle)
	return d
}

func (s *Scale) applyDefaults() {
	if s.Max == 0 {
		s.Max = max(DefaultScaleMax, s.Min)
	}
	if s.Idle == "" {
		s.Idle = DefaultScaleIdle
	}
	if s.Concurrency == 0 && s.RPS == 0 {
		s.Concurrency = DefaultScaleConcurrency
	}
}

// Workload returns the workload with the given name.
func (p *Project) Workload(name string) (*Workload, bool) {
	for i := range p.Workloads {
		if p.Workloads[i].Name == name {
			return &p.Workloads[i], true
		}
	}
	return nil, false
}

// WorkloadNames returns the names of all workloads in manifest order.
func (p *Project) WorkloadNames() []string {
	names := make([]string, len(p.Workloads))
	for i, w := range p.Workloads {
		names[i] = w.Name
	}
	return names
}

// FreePort returns want when no workload of p listens on it, else the next
// port above want that none does: on one machine (skiff run, dev --local)
// each workload needs its own.
func (p *Project) FreePort(want int) int {
	if want <= 0 {
		want = DefaultPort
	}
	used := map[int]bool{}
	for _, w := range p.Workloads {
		port := w.Port
		if port == 0 {
			port = DefaultPort
		}
		used[port] = true
	}
	for port := want; port <= 65535; port++ {
		if !used[port] {
			return port
		}
	}
	return want
}

// ApplyDefaults fills in every field left out with its default.
func (p *Project) ApplyDefaults() {
	if p.APIVersion == "" {
		p.APIVersion = APIVersion
	}
	if p.Namespace == "" {
		p.Namespace = p.Name
	}
	if p.RegistryAuth == "" {
		p.RegistryAuth = RegistryAuthAuto
	}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		if w.Template == "" {
			w.Template = DefaultTemplate
		}
		if w.Path == "" {
			w.Path = w.Name
		}
		if w.Port == 0 {
			w.Port = DefaultPort
		}
		if w.Replicas == nil {
			r := DefaultReplicas
			w.Replicas = &r
		}
		if w.Health == "" {
			w.Health = DefaultHealth
		}
		if w.Ready == "" {
			w.Ready = DefaultReady
		}
		if w.Autoscale != nil && w.Autoscale.CPUPercent == 0 {
			w.Autoscale.CPUPercent = defaultCPUPercent
		}
		if w.Scale != nil {
			w.Scale.applyDefaults()
		}
	}
}

// Order returns the workloads in dependency order: every workload comes
// after the ones it depends on; ties keep manifest order. The project must
// be valid (no cycles).
func (p *Project) Order() []Workload {
	index := map[string]int{}
	for i, w := range p.Workloads {
		index[w.Name] = i
	}
	done := make([]bool, len(p.Workloads))
	var out []Workload
	var visit func(i int)
	visit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		deps := append([]string(nil), p.Workloads[i].DependsOn...)
		sort.SliceStable(deps, func(a, b int) bool { return index[deps[a]] < index[deps[b]] })
		for _, d := range deps {
			if j, ok := index[d]; ok {
				visit(j)
			}
		}
		out = append(out, p.Workloads[i])
	}
	for i := range p.Workloads {
		visit(i)
	}
	return out
}

// EnvName turns a workload name into the prefix of its environment
// variables: "payments-api" becomes "PAYMENTS_API".
func EnvName(workload string) string {
	return strings.ToUpper(strings.ReplaceAll(workload, "-", "_"))
}
