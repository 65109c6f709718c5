// Package kube connects to Kubernetes the way kubectl does (kubeconfig,
// context, namespace) and answers the questions skiff asks of a cluster:
// is it reachable, what is wrong with these pods, what did they log.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ReachTimeout bounds how long skiff waits to learn that a cluster cannot
// be reached.
const ReachTimeout = 10 * time.Second

// Options select the cluster as kubectl's flags do.
type Options struct {
	Kubeconfig string // path; empty means KUBECONFIG or ~/.kube/config
	Context    string // kubeconfig context; empty means the current one
}

// Client talks to one cluster.
type Client struct {
	// Getter builds clients for Helm and others (the kubectl flag set).
	Getter *genericclioptions.ConfigFlags
	// REST is the client configuration.
	REST *rest.Config
	// Clientset is the typed client.
	Clientset kubernetes.Interface
	// Dynamic reads and writes objects of any kind (KEDA's, say).
	Dynamic dynamic.Interface
	// ContextName is the kubeconfig context in use.
	ContextName string
	// DefaultNamespace is the context's namespace ("default" when unset).
	DefaultNamespace string
	// Version is the API server's, as Ping read it (nil before).
	Version *version.Info

	opts Options
}

// FlagsFor returns kubectl-style flags for this cluster with namespace as
// the default namespace of objects that name none.
func (c *Client) FlagsFor(namespace string) *genericclioptions.ConfigFlags {
	flags := genericclioptions.NewConfigFlags(true)
	if c.opts.Kubeconfig != "" {
		flags.KubeConfig = &c.opts.Kubeconfig
	}
	if c.opts.Context != "" {
		flags.Context = &c.opts.Context
	}
	flags.Namespace = &namespace
	return flags
}

// New loads the kubeconfig and builds the clients. It does not contact the
// cluster; call Ping for that.
func New(opts Options) (*Client, error) {
	flags := genericclioptions.NewConfigFlags(true)
	if opts.Kubeconfig != "" {
		flags.KubeConfig = &opts.Kubeconfig
	}
	if opts.Context != "" {
		flags.Context = &opts.Context
	}
	loader := flags.ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w; check --kubeconfig or KUBECONFIG", err)
	}
	// Without a kubeconfig, client-go falls back to the cluster in the pod
	// (fine), else to http://localhost:8080: on a developer's machine,
	// where their own workloads listen. Never that.
	paths := loader.ConfigAccess().GetLoadingPrecedence()
	if len(raw.Clusters) == 0 {
		if _, err := rest.InClusterConfig(); err != nil {
			return nil, &NoKubeconfigError{Paths: paths}
		}
	}
	ctxName := raw.CurrentContext
	if opts.Context != "" {
		if _, ok := raw.Contexts[opts.Context]; !ok {
			return nil, fmt.Errorf("the kubeconfig has no context %q; `kubectl config get-contexts` lists them", opts.Context)
		}
		ctxName = opts.Context
	}
	if len(raw.Clusters) > 0 {
		kctx, ok := raw.Contexts[ctxName]
		if !ok || raw.Clusters[kctx.Cluster] == nil {
			return nil, fmt.Errorf("the kubeconfig (%s) has no current context with a cluster; choose one with --context, or `kubectl config use-context NAME`",
				strings.Join(paths, string(filepath.ListSeparator)))
		}
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no usable cluster in the kubeconfig: %w; check --kubeconfig, KUBECONFIG or --context", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil || ns == "" {
		ns = metav1.NamespaceDefault
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Getter: flags, REST: cfg, Clientset: cs, Dynamic: dyn, ContextName: ctxName, DefaultNamespace: ns, opts: opts}, nil
}

// NoKubeconfigError says there is no kubeconfig to read a cluster from.
type NoKubeconfigError struct {
	// Paths are where it was looked for.
	Paths []string
}

func (e *NoKubeconfigError) Error() string {
	return fmt.Sprintf("no kubeconfig found (looked at %s); point skiff at a cluster with --kubeconfig FILE or KUBECONFIG (SKIFF_KUBECONFIG), "+
		"or create one (kind create cluster, minikube start, or your provider's `get-credentials`)", strings.Join(e.Paths, ", "))
}

// UnreachableError says the cluster did not answer.
type UnreachableError struct {
	Host    string
	Context string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the cluster at %s (context %q): %v; check that it runs, or choose another with --context or --kubeconfig",
		e.Host, e.Context, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Ping checks that the API server answers within ReachTimeout, and
// records its Version.
func (c *Client) Ping(ctx context.Context) error {
	cfg := rest.CopyConfig(c.REST)
	cfg.Timeout = ReachTimeout
	// One REST client for one request, not a second typed clientset.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, ReachTimeout)
	defer cancel()
	raw, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err == nil {
		var v version.Info
		if json.Unmarshal(raw, &v) == nil {
			c.Version = &v
		}
		return nil
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return &UnreachableError{Host: c.REST.Host, Context: c.ContextName, Err: simplify(err)}
	}
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return fmt.Errorf("the cluster at %s refused skiff's credentials (context %q): %w", c.REST.Host, c.ContextName, err)
	}
	return &UnreachableError{Host: c.REST.Host, Context: c.ContextName, Err: simplify(err)}
}

// ValidatesFields reports whether the API server, as Ping found it,
// checks the fields of the objects it is sent itself (server-side field
// validation, on by default since Kubernetes 1.25 and GA in 1.27; this
// says yes from 1.27). False when unknown.
func (c *Client) ValidatesFields() bool {
	if c.Version == nil {
		return false
	}
	major, err := strconv.Atoi(leadingDigits(c.Version.Major))
	if err != nil {
		return false
	}
	minor, err := strconv.Atoi(leadingDigits(c.Version.Minor))
	if err != nil {
		return false
	}
	return major > 1 || (major == 1 && minor >= 27)
}

// leadingDigits is s up to its first non-digit: providers write minors
// such as "27+".
func leadingDigits(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		return s
	}
	return s[:i]
}

func simplify(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// EnsureNamespace creates namespace ns when it does not exist.
func (c *Client) EnsureNamespace(ctx context.Context, ns string) (created bool, err error) {
	_, err = c.Clientset.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("looking up namespace %s: %w", ns, err)
	}
	_, err = c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ns,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "skiff"},
	}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return true, nil
}
