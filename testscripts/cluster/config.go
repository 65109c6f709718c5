package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Versions of what the cluster is built from. The Kubernetes and etcd
// versions must match tools/kube/go.mod, CoreDNS's tools/coredns/go.mod.
const (
	kubeVersion    = "v1.37.2"
	etcdVersion    = "v3.7.3"
	corednsVersion = "v1.15.0"
	// The serverless engines; they must match tools/keda/go.mod and
	// tools/httpaddon/go.mod.
	kedaVersion      = "v2.21.0"
	httpAddonVersion = "v0.15.0"
	natsVersion      = "v2.15.3"
	// The edge (issue 26); they must match tools/traefik/go.mod (which
	// also pins the Gateway API CRDs: sigs.k8s.io/gateway-api v1.4.0),
	// tools/certmanager/go.mod and tools/pebble/go.mod.
	traefikVersion     = "v3.6.12"
	certManagerVersion = "v1.21.2"
	pebbleVersion      = "v2.10.3"
	// The NetworkPolicy enforcer (issue 29); it must match
	// tools/kuberouter/go.mod. Later versions are not served by the
	// module proxy here.
	kubeRouterVersion = "v2.1.0"
)

// Addresses. None is in an RFC 1918 range: pods and services use the
// benchmarking range 198.18.0.0/15.
const (
	nodeName      = "skiff"
	nodeIP        = "198.18.255.1" // added to lo as a /32; the kubelet and API server listen on it
	podCIDR       = "198.18.0.0/24"
	podGateway    = "198.18.0.1"
	serviceCIDR   = "198.19.0.0/24"
	apiServiceIP  = "198.19.0.1"
	dnsServiceIP  = "198.19.0.10"
	clusterDomain = "cluster.local"
	registryAddr  = "127.0.0.1:5000"
	// authRegistryAddr is a second registry that wants an account
	// (htpasswd), for private-registry tests: user authRegistryUser, the
	// password in the state dir (env prints both).
	authRegistryAddr = "127.0.0.1:5001"
	authRegistryUser = "skiff-e2e"
	apiPort          = "6443"
	etcdClientURL    = "http://127.0.0.1:23790"
	etcdPeerURL      = "http://127.0.0.1:23800"
	bridgeName       = "skiff0"
	cniNetName       = "skiff"
)

// Config says where the cluster keeps its files.
type Config struct {
	StateDir string // wiped by down, except logs
	CacheDir string // survives down: built binaries keyed by version
	SrcDir   string // testscripts/cluster, holding tools/ and cmd/
	// KubeletV is the kubelet's log verbosity (its logging.verbosity,
	// 0 to 10): 3 logs each probe and why a probe worker found nothing
	// to ask.
	KubeletV int
}

func defaultConfig() Config {
	cfg := Config{
		StateDir: os.Getenv("SKIFF_CLUSTER_STATE"),
		CacheDir: os.Getenv("SKIFF_CLUSTER_CACHE"),
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/skiff-cluster"
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = "/var/cache/skiff-cluster"
	}
	if wd, err := os.Getwd(); err == nil {
		cfg.SrcDir = wd
	}
	return cfg
}

// cluster carries the config and the output streams: progress goes to
// errOut, the env lines (data) to out.
type cluster struct {
	cfg    Config
	out    io.Writer
	errOut io.Writer
}

func newCluster(cfg Config, out, errOut io.Writer) *cluster {
	return &cluster{cfg: cfg, out: out, errOut: errOut}
}

func (c *cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.errOut, "cluster: "+format+"\n", args...)
}

// state returns a path inside the state dir.
func (c *cluster) state(elem ...string) string {
	return filepath.Join(append([]string{c.cfg.StateDir}, elem...)...)
}

func (c *cluster) logDir() string     { return c.state("logs") }
func (c *cluster) pkiDir() string     { return c.state("pki") }
func (c *cluster) kubeconfig() string { return c.state("admin.kubeconfig") }
func (c *cluster) containerdSock() string {
	return c.state("containerd", "containerd.sock")
}
