package project

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// FieldError is one problem with one field of the manifest.
type FieldError struct {
	File string // manifest path, when known
	Line int    // 1-based line, 0 when unknown
	Path string // field path, e.g. "workloads[1].port"
	Msg  string // what is wrong
	Hint string // how to fix it
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// ValidationErrors are all the problems found in a manifest.
type ValidationErrors []*FieldError

func (v ValidationErrors) Error() string {
	if len(v) == 1 {
		return v[0].Error()
	}
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = "  " + e.Error()
	}
	return fmt.Sprintf("the manifest has %d problems:\n%s", len(v), strings.Join(lines, "\n"))
}

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envKey       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	configKey    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// ValidConfigKey reports whether k may be a key of a ConfigMap or Secret.
func ValidConfigKey(k string) bool { return configKey.MatchString(k) }

// RegistryHint says how to write a registry.
const RegistryHint = "use HOST[:PORT][/PATH] in lowercase, e.g. registry.example.com/team"

// CheckRegistry says why reg cannot prefix image names ("" when it can, or
// is empty): a scheme, a tag, spaces, capitals...
func CheckRegistry(reg string) string {
	switch {
	case reg == "":
		return ""
	case strings.Contains(reg, "://"):
		return fmt.Sprintf("%q must not have a scheme", reg)
	}
	if _, err := name.NewRepository(strings.TrimSuffix(reg, "/") + "/image"); err != nil {
		return fmt.Sprintf("%q is not a registry", reg)
	}
	return ""
}

// ValidName reports why name is not a DNS-1123 label, or "" when it is.
func ValidName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 63:
		return fmt.Sprintf("%q is longer than 63 characters", name)
	case !dns1123Label.MatchString(name):
		return fmt.Sprintf("%q is not a valid name", name)
	}
	return ""
}

// MaxReleaseName is Helm's limit for a release name (<project>-<workload>).
const MaxReleaseName = 53

const nameHint = "use lowercase letters, digits and '-', starting and ending with a letter or digit (DNS-1123 label)"

// Validate checks a defaulted project and returns every problem found.
func (p *Project) Validate() ValidationErrors {
	var errs ValidationErrors
	add := func(path, msg, hint string) {
		errs = append(errs, &FieldError{Path: path, Msg: msg, Hint: hint})
	}
	if why := ValidName(p.Name); why != "" {
		add("name", why, nameHint)
	}
	if p.Namespace != "" && p.Namespace != p.Name {
		if why := ValidName(p.Namespace); why != "" {
			add("namespace", why, nameHint)
		}
	}
	if why := CheckRegistry(p.Registry); why != "" {
		add("registry", why, RegistryHint)
	}
	if !slices.Contains(RegistryAuths(), p.RegistryAuth) {
		add("registryAuth", describeBad(p.RegistryAuth), "use one of: "+strings.Join(RegistryAuths(), ", "))
	}
	for i, pl := range p.Build.Platforms {
		checkPlatform(fmt.Sprintf("build.platforms[%d]", i), pl, add)
	}
	for lang := range p.Build.Base {
		if !slices.Contains(Langs(), lang) {
			add("build.base."+lang, "is not a known language", "use one of: "+strings.Join(Langs(), ", "))
		}
	}
	if len(p.Workloads) == 0 {
		add("workloads", "is empty", "add a workload with `skiff add NAME`")
	}
	p.checkEvents(add)
	seen := map[string]int{}
	paths := map[string]int{}
	for i, w := range p.Workloads {
		at := fmt.Sprintf("workloads[%d]", i)
		if why := ValidName(w.Name); why != "" {
			add(at+".name", why, nameHint)
		} else if w.Name[0] < 'a' || w.Name[0] > 'z' {
			add(at+".name", fmt.Sprintf("%q starts with a digit", w.Name), "start it with a letter: it names the workload's Kubernetes Service")
		} else if n := len(p.Name) + 1 + len(w.Name); n > MaxReleaseName {
			add(at+".name", fmt.Sprintf("%q makes the release name %s-%s %d characters long, more than Helm's %d", w.Name, p.Name, w.Name, n, MaxReleaseName),
				"shorten the workload's or the project's name")
		} else if j, dup := seen[w.Name]; dup {
			add(at+".name", fmt.Sprintf("%q is used by workloads[%d] too", w.Name, j), "give every workload a unique name")
		} else {
			seen[w.Name] = i
		}
		if !slices.Contains(Kinds(), w.Kind) {
			add(at+".kind", describeBad(w.Kind), "use one of: "+strings.Join(Kinds(), ", "))
		}
		if !slices.Contains(Langs(), w.Lang) {
			add(at+".lang", describeBad(w.Lang), "use one of: "+strings.Join(Langs(), ", "))
		}
		if w.Port < 1 || w.Port > 65535 {
			add(at+".port", fmt.Sprintf("%d is out of range", w.Port), "use a port from 1 to 65535")
		}
		if msg := checkRelPath(w.Path); msg != "" {
			add(at+".path", msg, "use a folder inside the project, e.g. "+w.Name)
		} else if j, dup := paths[path.Clean(w.Path)]; dup {
			add(at+".path", fmt.Sprintf("%q is the folder of workloads[%d] too", w.Path, j), "give every workload its own folder")
		} else {
			paths[path.Clean(w.Path)] = i
		}
		checkMaps(at, w.Env, w.Config, add)
		if w.Replicas != nil && *w.Replicas < 0 {
			add(at+".replicas", fmt.Sprintf("%d is negative", *w.Replicas), "use 0 or more")
		}
		checkAutoscale(at+".autoscale", w.Autoscale, add)
		if w.Autoscale != nil && w.Scale != nil {
			add(at+".scale", "and autoscale are both set", scaleOrAutoscale)
		}
		checkScale(at+".scale", w.Scale, add)
		checkResources(at+".resources", w.Resources, add)
		for field, v := range map[string]string{"health": w.Health, "ready": w.Ready} {
			if v != "" && !strings.HasPrefix(v, "/") {
				add(at+"."+field, fmt.Sprintf("%q must start with /", v), "use an HTTP path such as /healthz")
			}
		}
	}
	for i, w := range p.Workloads {
		for j, d := range w.DependsOn {
			at := fmt.Sprintf("workloads[%d].dependsOn[%d]", i, j)
			switch {
			case d == w.Name:
				add(at, fmt.Sprintf("%q is the workload itself", d), "remove it")
			case !contains(p.Workloads, d):
				add(at, fmt.Sprintf("%q is not a workload of this project", d), "use one of: "+strings.Join(p.WorkloadNames(), ", "))
			}
		}
	}
	for i, w := range p.Workloads {
		if w.Scale == nil && !p.scaledInSomeEnv(w.Name) {
			continue
		}
		pods := PodsServiceName(w.Name)
		if len(pods) > 63 {
			add(fmt.Sprintf("workloads[%d].name", i), fmt.Sprintf("%q is too long for a scaled workload: its pods' Service %s would be longer than 63 characters", w.Name, pods),
				"shorten the workload's name")
		}
		if j, taken := seen[pods]; taken {
			add(fmt.Sprintf("workloads[%d].name", j), fmt.Sprintf("%q is the name of the pods' Service of the scaled workload %s", pods, w.Name),
				"rename one of the two workloads")
		}
	}
	if cycle := p.findCycle(); cycle != nil {
		add(fmt.Sprintf("workloads[%d].dependsOn", cycle.at), "forms a cycle: "+strings.Join(cycle.names, " -> "), "remove one of these dependencies")
	}
	checkKeyRef("signing", p.Signing, add)
	checkKeyRef("verify", p.Verify, add)
	checkMetrics("metrics", p.Metrics, add)
	p.validateEnvironments(add)
	p.checkExpose(add)
	p.checkNetworks(add)
	return errs
}

// checkMaps checks the keys of a workload's env and config.
func checkMaps(at string, env, config map[string]string, add func(path, msg, hint string)) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !envKey.MatchString(k) {
			add(at+".env."+k, "is not a valid environment variable name", "use letters, digits and '_', not starting with a digit")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(config)) {
		if !configKey.MatchString(k) {
			add(at+".config."+k, "is not a valid config key", "use letters, digits, '-', '_' and '.'")
		}
	}
}

func checkAutoscale(at string, a *Autoscale, add func(path, msg, hint string)) {
	if a == nil {
		return
	}
	if a.Min < 1 {
		add(at+".min", fmt.Sprintf("%d is less than 1", a.Min), "set autoscale.min to 1 or more")
	}
	if a.Max < a.Min {
		add(at+".max", fmt.Sprintf("%d is less than autoscale.min (%d)", a.Max, a.Min), "set autoscale.max to at least autoscale.min")
	}
	if a.CPUPercent < 1 || a.CPUPercent > 100 {
		add(at+".cpuPercent", fmt.Sprintf("%d is out of range", a.CPUPercent), "use a percentage from 1 to 100")
	}
}

const scaleOrAutoscale = "choose one: scale (KEDA, on HTTP traffic, down to zero) or autoscale (the CPU HorizontalPodAutoscaler)"

// checkScale checks a defaulted scale.
func checkScale(at string, s *Scale, add func(path, msg, hint string)) {
	if s == nil {
		return
	}
	if s.Min < 0 {
		add(at+".min", fmt.Sprintf("%d is negative", s.Min), "use 0 to scale to zero, or more")
	}
	if s.Max < 1 {
		add(at+".max", fmt.Sprintf("%d is less than 1", s.Max), "set scale.max to 1 or more")
	} else if s.Max < s.Min {
		add(at+".max", fmt.Sprintf("%d is less than scale.min (%d)", s.Max, s.Min), "set scale.max to at least scale.min")
	}
	d, err := time.ParseDuration(s.Idle)
	switch {
	case err != nil:
		add(at+".idle", fmt.Sprintf("%q is not a duration", s.Idle), "use a duration such as 30s, 2m or 1h")
	case d < time.Second || d%time.Second != 0:
		add(at+".idle", fmt.Sprintf("%q is not a whole number of seconds of at least 1s", s.Idle), "use a duration such as 30s, 2m or 1h")
	case d > 24*time.Hour:
		add(at+".idle", fmt.Sprintf("%q is longer than a day", s.Idle), "use at most 24h")
	}
	if s.Concurrency < 0 {
		add(at+".concurrency", fmt.Sprintf("%d is negative", s.Concurrency), "set the requests in flight per pod to 1 or more")
	}
	if s.RPS < 0 {
		add(at+".rps", fmt.Sprintf("%d is negative", s.RPS), "set the requests per second per pod to 1 or more")
	}
}

// PodsServiceName is the Service of a scaled workload's own pods: the
// workload's name goes to the KEDA HTTP add-on's interceptor, which
// forwards to this one.
func PodsServiceName(workload string) string { return workload + "-pods" }

// scaledInSomeEnv reports whether an environment sets scale for workload.
func (p *Project) scaledInSomeEnv(workload string) bool {
	for _, e := range p.Environments {
		if o, ok := e.Workloads[workload]; ok && o.Scale != nil {
			return true
		}
	}
	return false
}

func describeBad(v string) string {
	if v == "" {
		return "is missing"
	}
	return fmt.Sprintf("%q is not known", v)
}

func checkRelPath(p string) string {
	switch {
	case p == "" || p == ".":
		return "must name a folder"
	case path.IsAbs(p) || strings.HasPrefix(p, `\`) || (len(p) > 1 && p[1] == ':'):
		return fmt.Sprintf("%q is absolute", p)
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%q uses '\\'", p)
	case path.Clean(p) == ".." || strings.HasPrefix(path.Clean(p), "../"):
		return fmt.Sprintf("%q leaves the project folder", p)
	}
	return ""
}

func contains(ws []Workload, name string) bool {
	for _, w := range ws {
		if w.Name == name {
			return true
		}
	}
	return false
}

type cycle struct {
	at    int
	names []string
}

// findCycle returns the first dependency cycle, in manifest order.
func (p *Project) findCycle() *cycle {
	index := map[string]int{}
	for i, w := range p.Workloads {
		if _, dup := index[w.Name]; !dup {
			index[w.Name] = i
		}
	}
	const (
		unvisited = iota
		visiting
		visited
	)
	state := make([]int, len(p.Workloads))
	var stack []int
	var found *cycle
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = visiting
		stack = append(stack, i)
		for _, d := range p.Workloads[i].DependsOn {
			j, ok := index[d]
			if !ok || j == i {
				continue
			}
			switch state[j] {
			case visiting:
				start := slices.Index(stack, j)
				names := []string{}
				for _, k := range stack[start:] {
					names = append(names, p.Workloads[k].Name)
				}
				names = append(names, p.Workloads[j].Name)
				found = &cycle{at: j, names: names}
				return true
			case unvisited:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = visited
		return false
	}
	for i := range p.Workloads {
		if state[i] == unvisited && visit(i) {
			return found
		}
	}
	return nil
}

// keyHint says how to name a key.
const keyHint = "write `key: FILE` (a path relative to skiff.yaml, e.g. skiff.key or skiff.pub) or `key: env://NAME` (the PEM in an environment variable); create a pair with `skiff keys generate`"

// checkKeyRef checks the key of signing: or verify:.
func checkKeyRef(at string, k *KeyRef, add func(path, msg, hint string)) {
	if k == nil {
		return
	}
	switch {
	case strings.TrimSpace(k.Key) == "":
		add(at+".key", "is missing", keyHint)
	case k.Key == "env://" || strings.HasPrefix(k.Key, "env://") && strings.ContainsAny(k.Key[len("env://"):], " =/$"):
		add(at+".key", fmt.Sprintf("%q is not env://NAME", k.Key), keyHint)
	case strings.Contains(k.Key, "://") && !strings.HasPrefix(k.Key, "env://"):
		add(at+".key", fmt.Sprintf("%q is neither a file nor env://NAME (KMS and keyless signing are not supported)", k.Key), keyHint)
	}
}
