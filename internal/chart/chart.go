// Package chart turns a workload into a Helm chart and its values, and
// renders it exactly as an install would.
package chart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
	"github.com/skiffdev/skiff/templates"
)

// OwnChartDir is the folder in a workload that, when present, replaces the
// base chart entirely.
const OwnChartDir = "chart"

// ReleaseName is the Helm release of a workload: <project>-<workload>.
func ReleaseName(p *project.Project, w *project.Workload) string {
	return p.Name + "-" + w.Name
}

// ServiceURL is the in-cluster URL of a workload, as given to the workloads
// that depend on it. A scaled workload's name leads to the KEDA HTTP
// add-on's interceptor, so its URL has the interceptor's port.
func ServiceURL(w *project.Workload, namespace string) string {
	port := w.Port
	if w.Scale != nil {
		port = InterceptorPort
	}
	return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d", w.Name, namespace, port)
}

// Where the KEDA HTTP add-on runs, as its own manifests install it; the
// base chart's scale.interceptor and scale.scalerAddress values.
const (
	InterceptorNamespace = "keda"
	InterceptorService   = "keda-add-ons-http-interceptor-proxy"
	InterceptorPort      = 8080
)

// ScaleTimings are the KEDA settings skiff derives from scale.idle. The
// add-on counts a workload active while its request rate over window is
// above zero, so a request ends its idleness for window, at most a
// minute; KEDA then waits cooldown more before scaling to zero, so the
// two add up to idle. (Requests in flight alone would not do: a steady
// trickle of quick requests has none in flight at most instants.) KEDA
// checks every tenth of idle (1 s to 30 s) whether to scale in, and a new
// release keeps its first pod for idle, so the deploy sees it start.
func ScaleTimings(s *project.Scale) (window, cooldown, polling int) {
	idle := int(s.IdleDuration().Seconds())
	window = min(idle, 60)
	cooldown = idle - window
	polling = min(max(idle/10, 1), 30)
	return window, cooldown, polling
}

// Load returns the chart of a workload: the workload's own chart/ folder when
// it has one, else skiff's base chart. own reports which.
func Load(projectRoot string, w *project.Workload) (c *chart.Chart, own bool, err error) {
	dir := filepath.Join(projectRoot, filepath.FromSlash(w.Path), OwnChartDir)
	if fi, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err == nil && !fi.IsDir() {
		c, err := loader.LoadDir(dir)
		if err != nil {
			return nil, true, fmt.Errorf("loading the chart of %s from %s: %w", w.Name, dir, err)
		}
		return c, true, nil
	}
	c, err = LoadBase()
	return c, false, err
}

// LoadBase loads skiff's embedded base chart.
func LoadBase() (*chart.Chart, error) {
	files, err := BaseFiles()
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

// BaseFiles returns the files of the base chart as Helm's loader takes them.
func BaseFiles() ([]*loader.BufferedFile, error) {
	var files []*loader.BufferedFile
	fsys := templates.Chart()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path.Clean(p), Data: data})
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, err
}

// WriteBase writes the base chart into dir (for linting and for users who
// want to start their own chart/ from it).
func WriteBase(dir string) error {
	files, err := BaseFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// PullSecretName is the pull Secret deploy keeps for a project whose
// registry wants credentials.
func PullSecretName(p *project.Project) string { return p.Name + "-registry-pull" }

// SecretName is the Secret `skiff secret` manages for a workload; the
// chart passes its keys to the workload as environment variables.
func SecretName(workload string) string { return workload + "-secrets" }

// Values are the chart values skiff derives from the manifest for a
// workload deployed in namespace with image (a reference by digest): its
// fields, then the values of the project's environment (p.Values) over
// them.
func Values(p *project.Project, w *project.Workload, namespace, image string) map[string]any {
	urls := map[string]any{}
	for _, d := range w.DependsOn {
		if dep, ok := p.Workload(d); ok {
			urls[project.EnvName(d)+"_URL"] = ServiceURL(dep, namespace)
		}
	}
	replicas := project.DefaultReplicas
	if w.Replicas != nil {
		replicas = *w.Replicas
	}
	v := map[string]any{
		"project":    p.Name,
		"workload":   w.Name,
		"kind":       w.Kind,
		"image":      imageValues(p, image),
		"port":       w.Port,
		"replicas":   replicas,
		"env":        stringMap(w.Env),
		"urls":       urls,
		"config":     stringMap(w.Config),
		"liveConfig": w.LiveConfig,
		"probes":     map[string]any{"liveness": w.Health, "readiness": w.Ready},
		"secretName": SecretName(w.Name),
	}
	if a := w.Autoscale; a != nil {
		v["autoscale"] = map[string]any{"enabled": true, "min": a.Min, "max": a.Max, "cpuPercent": a.CPUPercent}
	}
	if sc := w.Scale; sc != nil {
		window, cooldown, polling := ScaleTimings(sc)
		if len(w.Triggers) > 0 {
			// A consumer's lag has no window: a fast handler under a steady
			// trickle shows none at most of KEDA's polls. KEDA's cooldown
			// is then the whole of idle, counted from the last poll that
			// saw events waiting.
			cooldown = window + cooldown
		}
		v["scale"] = map[string]any{
			"enabled": true, "min": sc.Min, "max": sc.Max,
			"concurrency": sc.Concurrency, "rps": sc.RPS, "rpsWindow": fmt.Sprintf("%ds", window),
			"cooldownSeconds": cooldown, "initialCooldownSeconds": window + cooldown, "pollingSeconds": polling,
		}
	}
	if p.Events != nil {
		v["events"] = eventValues(p, w)
	}
	if img := RelayImage(p); img != "" && p.Metrics.ProxyOn() {
		v["proxy"] = proxyValues(img, w)
	}
	if x := p.Exposure(w); x != nil {
		v["expose"] = exposeValues(x, w, namespace)
	}
	v["network"] = networkValues(p, w)
	if r := w.Resources; r != nil {
		requests := map[string]any{}
		if r.CPU != "" {
			requests["cpu"] = r.CPU
		}
		if r.Memory != "" {
			requests["memory"] = r.Memory
		}
		res := map[string]any{"requests": requests}
		// Without memoryLimit, the limit is the request: never below it.
		if limit := cmp.Or(r.MemoryLimit, r.Memory); limit != "" {
			res["limits"] = map[string]any{"memory": limit}
		}
		v["resources"] = res
	}
	// The environment's values for every workload come over skiff's.
	return Merge(v, p.Values)
}

// eventValues are the chart's events values: the relay sidecar, the
// consumers of w's triggers and the CronJobs of its schedules.
func eventValues(p *project.Project, w *project.Workload) map[string]any {
	// The manifest was validated: its triggers map to consumers.
	plan, _ := relayplan.For(p, w)
	if plan == nil {
		plan = &relay.Plan{Stream: relayplan.Stream(p), Delivery: relayplan.Delivery(w)}
	}
	triggers := make([]any, len(plan.Triggers))
	for i, t := range plan.Triggers {
		triggers[i] = map[string]any{"consumer": t.Consumer, "filter": t.Filter, "source": t.Source}
	}
	schedules := make([]any, len(plan.Schedules))
	for i, s := range plan.Schedules {
		schedules[i] = map[string]any{"name": s.Name, "schedule": s.Schedule, "timeZone": s.TimeZone, "subject": s.Subject, "source": s.Source}
	}
	monitor := ""
	if u, err := url.Parse(p.Events.Bus); err == nil && u.Hostname() != "" {
		monitor = net.JoinHostPort(u.Hostname(), "8222")
	}
	// With a signing key (deploy mints the users) or a tls:// bus's CA,
	// the relay and the CronJobs mount the Secret of the workload's bus
	// users; skiff deploy fills it, render names it only.
	inboxes := map[string]any{"relay": relay.Inbox(plan.Stream, w.Name)}
	for _, s := range plan.Schedules {
		inboxes[s.Name] = relay.Inbox(plan.Stream, s.Name)
	}
	auth := map[string]any{
		"enabled": p.Events.SigningKey != "" || p.Events.TLS != nil,
		"secret":  relay.CredsSecret(w.Name),
		"creds":   p.Events.SigningKey != "",
		"ca":      p.Events.TLS != nil && p.Events.TLS.CA != "",
		"inboxes": inboxes,
	}
	return map[string]any{
		"enabled":    true,
		"auth":       auth,
		"bus":        p.Events.Bus,
		"stream":     plan.Stream,
		"relayImage": p.Events.RelayImage,
		"triggers":   triggers,
		"schedules":  schedules,
		"delivery": map[string]any{"retries": plan.Delivery.Retries, "backoff": plan.Delivery.Backoff.String(),
			"timeout": plan.Delivery.Timeout.String()},
		"concurrency":        plan.Delivery.Concurrency,
		"drainSeconds":       int(plan.Delivery.Timeout.Seconds()) + 15,
		"monitoringEndpoint": monitor,
	}
}

// networkValues are the chart's network values: whether the workload
// gets a NetworkPolicy, who it admits besides the interceptor and the
// gateway (which the chart knows from scale and expose), and, with
// network.egress, whom it may reach.
func networkValues(p *project.Project, w *project.Workload) map[string]any {
	if !p.NetworkPolicy() {
		return map[string]any{"policy": false}
	}
	v := map[string]any{
		"policy":     true,
		"dependents": stringsList(p.Dependents(w.Name)),
		"allowFrom":  []any{},
		"egress":     map[string]any{"limited": false},
	}
	var from []project.Peer
	if n := p.Network; n != nil {
		from = n.AllowFrom
	}
	// The Prometheus skiff reads scrapes the pods: its namespace, any port.
	if prom, ok := project.ServicePeer(p.Metrics.PrometheusURL(), 9090); ok && prom.Namespace != "" {
		from = append(from, project.Peer{Namespace: prom.Namespace})
	}
	v["allowFrom"] = peerValues(from)
	if x := p.Exposure(w); x != nil {
		v["gatewayNamespace"] = p.GatewayNamespaceFor(x)
	}
	if !p.EgressLimited() {
		return v
	}
	var deps []any
	for _, d := range w.DependsOn {
		if dep, ok := p.Workload(d); ok {
			// A policy sees the pod's port a Service leads to: the
			// dependency's proxy when it runs one.
			port := dep.Port
			if RelayImage(p) != "" && p.Metrics.ProxyOn() {
				port = proxyValues("", dep)["port"].(int)
			}
			deps = append(deps, map[string]any{"name": dep.Name, "port": port, "scaled": dep.Scale != nil})
		}
	}
	to := peerValues(p.Network.Egress)
	if p.Events != nil {
		if bus, ok := project.BusPeer(p.Events.Bus); ok {
			to = append(peerValues([]project.Peer{bus}), to...)
		}
	}
	v["egress"] = map[string]any{"limited": true, "workloads": append([]any{}, deps...), "to": to}
	return v
}

// peerValues are NetworkPolicy peers as the chart takes them.
func peerValues(peers []project.Peer) []any {
	out := []any{}
	for _, pe := range peers {
		m := map[string]any{}
		if pe.Namespace != "" {
			m["namespace"] = pe.Namespace
		}
		if len(pe.Pods) > 0 {
			m["pods"] = stringMap(pe.Pods)
		}
		if pe.CIDR != "" {
			m["cidr"] = pe.CIDR
		}
		if len(pe.Ports) > 0 {
			ports := make([]any, len(pe.Ports))
			for i, port := range pe.Ports {
				ports[i] = port
			}
			m["ports"] = ports
		}
		out = append(out, m)
	}
	return out
}

func stringsList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// ProxyPort is where skiff-relay's proxy listens in the pod, in front of
// the workload's port (ProxyPortAlt when the workload has that port).
const (
	ProxyPort    = 8012
	ProxyPortAlt = 8013
)

// RelayImage is the skiff-relay image of p's pods: the one the command
// layer resolved, else events.relayImage; "" when none is known.
func RelayImage(p *project.Project) string {
	if p.RelayImage != "" {
		return p.RelayImage
	}
	if p.Events != nil {
		return p.Events.RelayImage
	}
	return ""
}

// proxyValues are the chart's proxy values: skiff-relay in front of w's
// port, counting cold starts when w scales from zero.
func proxyValues(image string, w *project.Workload) map[string]any {
	port := ProxyPort
	if w.Port == ProxyPort {
		port = ProxyPortAlt
	}
	return map[string]any{
		"enabled":    true,
		"image":      image,
		"port":       port,
		"coldStarts": w.Scale != nil && w.Scale.Min == 0,
	}
}

// exposeValues are the chart's expose values: the route (or Ingress) and
// where its certificate comes from.
func exposeValues(x *project.Exposure, w *project.Workload, namespace string) map[string]any {
	v := map[string]any{
		"enabled": true,
		"host":    x.Host,
		"path":    x.Path,
		"tls": map[string]any{"mode": x.TLS.Mode, "secret": x.SecretName(w.Name), "issuer": x.TLS.Issuer,
			"issuerKind": cmp.Or(x.TLS.Kind, project.IssuerKindCluster)},
		"ingress": map[string]any{"enabled": x.Ingress != nil, "className": ""},
	}
	if x.Ingress != nil {
		v["ingress"] = map[string]any{"enabled": true, "className": x.Ingress.ClassName}
	}
	if g := x.Gateway; g != nil {
		v["gateway"] = map[string]any{"name": g.Name, "namespace": g.Namespace, "listener": g.Listener,
			"addedListener": x.AddedListener(w.Name, namespace)}
	}
	return v
}

// imageValues: the image, and the pull Secret when registryAuth says
// pods need one (with auto, deploy adds it when the registry wants it).
func imageValues(p *project.Project, image string) map[string]any {
	v := map[string]any{"ref": image}
	if p.RegistryAuth == project.RegistryAuthPullSecret {
		v["pullSecret"] = PullSecretName(p)
	}
	return v
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Merge lays overrides (from -f and --set) over skiff's values. Neither
// argument is changed.
func Merge(base, overrides map[string]any) map[string]any {
	return chartutil.CoalesceTables(deepCopy(overrides), deepCopy(base))
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			out[k] = deepCopy(v)
		case []any:
			out[k] = append([]any(nil), v...)
		default:
			out[k] = v
		}
	}
	return out
}

// KubeVersion is the Kubernetes version offline rendering assumes.
const KubeVersion = "v1.37.0"

// Render renders c with values as `helm upgrade --install` would apply it
// to release in namespace, without a cluster: the manifests in Helm's
// install order, as one multi-document YAML.
func Render(ctx context.Context, c *chart.Chart, values map[string]any, release, namespace string) (string, error) {
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = release
	install.Namespace = namespace
	install.DryRun = true
	install.ClientOnly = true
	install.IncludeCRDs = true
	install.DisableOpenAPIValidation = true
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return "", err
	}
	install.KubeVersion = kv
	rel, err := install.RunWithContext(ctx, c, values)
	if err != nil {
		return "", renderErr(release, err)
	}
	// Hooks are applied by deploy too, but Helm keeps them apart from the
	// manifest: add them, as `helm template` does.
	var b strings.Builder
	b.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String(), nil
}

// Selector is the label selector of a release's pods.
func Selector(release string) string {
	return "app.kubernetes.io/instance=" + release
}

func renderErr(release string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("rendering the chart of %s: %w", release, err)
}
