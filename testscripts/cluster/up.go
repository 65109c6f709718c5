package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// up starts the whole cluster and prints the env lines when it is ready.
// State left by an earlier cluster (a crash, a missed down) is cleaned up
// first.
func (c *cluster) up(ctx context.Context) error {
	begin := time.Now()
	if err := c.checkStateDir(); err != nil {
		return err
	}
	if c.hasState() {
		c.logf("found the state of an earlier cluster in %s; taking it down first", c.cfg.StateDir)
		if err := c.down(ctx); err != nil {
			return fmt.Errorf("cleaning up the earlier cluster: %w", err)
		}
	}
	if err := portsFree(); err != nil {
		return err
	}
	// Keep the last cluster's logs one more round, for a crash post-mortem.
	prev := c.state("logs-previous")
	if err := os.RemoveAll(prev); err != nil {
		return err
	}
	if err := os.Rename(c.logDir(), prev); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o755); err != nil {
		return err
	}
	host, err := c.loadHost()
	if err != nil {
		return err
	}
	if err := c.noteHostState(host); err != nil {
		return err
	}
	bins, err := c.ensureBinaries(ctx)
	if err != nil {
		return err
	}
	if err := writePKI(c.pkiDir()); err != nil {
		return fmt.Errorf("writing certificates: %w", err)
	}
	if err := c.writeConfigs(bins); err != nil {
		return fmt.Errorf("writing configs: %w", err)
	}

	// Host networking: the node address, forwarding, and bridged traffic
	// through iptables so Services work between pods on the bridge.
	if err := c.addLoAddr(host); err != nil {
		return err
	}
	if err := c.setSysctl(host, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	if _, err := os.Stat(sysctlPath("net.bridge.bridge-nf-call-iptables")); err == nil {
		if err := c.setSysctl(host, "net.bridge.bridge-nf-call-iptables", "1"); err != nil {
			return err
		}
	}
	// Values the kubelet and kube-proxy may set by themselves.
	if err := c.recordSysctls(host, "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic",
		"kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
		"net.ipv4.conf.all.route_localnet", "net.netfilter.nf_conntrack_max",
		"net.netfilter.nf_conntrack_tcp_timeout_established", "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
		"net.bridge.bridge-nf-call-ip6tables"); err != nil {
		return err
	}

	args := c.componentArgs(bins)
	startAndWait := func(name string, timeout time.Duration, check func(context.Context) error) error {
		rec, err := c.start(name, nil, args[name]...)
		if err != nil {
			return err
		}
		if check == nil {
			return nil
		}
		return c.waitFor(ctx, name, rec, timeout, check)
	}

	if err := startAndWait("registry", 30*time.Second, httpOK("http://"+registryAddr+"/v2/")); err != nil {
		return err
	}
	if err := c.writeAuthRegistryAccount(); err != nil {
		return err
	}
	if err := startAndWait("registry-auth", 30*time.Second, httpStatus("http://"+authRegistryAddr+"/v2/", http.StatusUnauthorized)); err != nil {
		return err
	}
	for _, img := range []binaryImage{
		{Ref: pauseImage, Binary: bins.pause},
		{Ref: corednsImage, Binary: bins.coredns, User: "65532"},
	} {
		if err := pushImage(ctx, img); err != nil {
			return err
		}
	}
	c.logf("pushed the pause and CoreDNS images to %s", registryAddr)

	if err := startAndWait("containerd", 30*time.Second, unixDial(c.containerdSock())); err != nil {
		return err
	}
	if err := startAndWait("etcd", 60*time.Second, httpOK(etcdClientURL+"/health")); err != nil {
		return err
	}
	cs, err := c.client()
	if err != nil {
		return err
	}
	if err := startAndWait("kube-apiserver", 120*time.Second, func(ctx context.Context) error {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		if err := startAndWait(name, 0, nil); err != nil {
			return err
		}
	}
	kubelet, err := c.readRecord("kubelet")
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "the node to be Ready", kubelet, 120*time.Second, func(ctx context.Context) error {
		return nodeReady(ctx, cs)
	}); err != nil {
		return err
	}
	c.logf("node %s is Ready", nodeName)
	if err := c.startKubeRouter(ctx, bins.kubeRouter); err != nil {
		return fmt.Errorf("starting the NetworkPolicy enforcer: %w", err)
	}
	if err := deployDNS(ctx, cs); err != nil {
		return err
	}
	if err := c.publishKubeProxyConfig(ctx, cs); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "CoreDNS to be ready", kubelet, 120*time.Second, func(ctx context.Context) error {
		return dnsReady(ctx, cs)
	}); err != nil {
		return err
	}
	if err := c.installEngines(ctx, bins.keda, kubelet); err != nil {
		return fmt.Errorf("installing the serverless engines: %w", err)
	}
	if err := c.installNATS(ctx, bins.nats, kubelet); err != nil {
		return fmt.Errorf("installing nats-server: %w", err)
	}
	if err := c.installGateway(ctx, bins.edge, kubelet); err != nil {
		return fmt.Errorf("installing the gateway, cert-manager and Pebble: %w", err)
	}
	if err := c.startPrometheus(ctx); err != nil {
		return fmt.Errorf("starting prometheus: %w", err)
	}
	if err := c.checkAlive(); err != nil {
		return err
	}
	c.logf("cluster is up in %s; state in %s, logs in %s", time.Since(begin).Round(time.Second), c.cfg.StateDir, c.logDir())
	return c.printEnv()
}

// portsFree fails if another process already listens on an address the
// cluster needs (a second cluster, a stray registry on port 5000): the
// readiness checks would otherwise talk to it. It only tries to listen, so
// it sends no traffic.
func portsFree() error {
	addrs := []string{registryAddr, authRegistryAddr, "127.0.0.1:23790", "127.0.0.1:23800",
		nodeIP + ":" + apiPort, nodeIP + ":10250", "127.0.0.1:10248", "127.0.0.1:10249",
		"127.0.0.1:10256", "127.0.0.1:10257", "127.0.0.1:10259"}
	var errs []error
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err == nil {
			l.Close()
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			errs = append(errs, fmt.Errorf("%s is already in use by another process (see `ss -ltnp`)", a))
		}
		// EADDRNOTAVAIL: the node address is not on lo yet, so it is free.
	}
	return errors.Join(errs...)
}

// hasState reports whether an earlier cluster left anything to clean up.
func (c *cluster) hasState() bool {
	if _, err := os.Stat(c.hostFile()); err == nil {
		return true
	}
	recs, _ := filepath.Glob(filepath.Join(c.pidDir(), "*.json"))
	return len(recs) > 0
}

func (c *cluster) client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// applyClients returns what applying manifests to the cluster and waiting
// for them needs: a dynamic client, a typed client and a REST mapper that
// discovers the kinds as it goes (Reset it once CRDs are applied), all
// with a 30s request timeout.
func (c *cluster) applyClients() (dynamic.Interface, kubernetes.Interface, *restmapper.DeferredDiscoveryRESTMapper, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Timeout = 30 * time.Second
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return dyn, cs, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery())), nil
}

// componentNames lists the processes up starts, in start order.
func componentNames() []string {
	return []string{"registry", "registry-auth", "containerd", "etcd", "kube-apiserver",
		"kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", kubeRouterName, "prometheus-sd", "prometheus"}
}

// checkAlive fails if a started component has died.
func (c *cluster) checkAlive() error {
	var errs []error
	for _, name := range componentNames() {
		r, err := c.readRecord(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if !r.alive() {
			errs = append(errs, fmt.Errorf("%s (pid %d) is not running; last lines of its log:\n%s", name, r.Pid, c.logTail(name, 20)))
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) status() error {
	if err := c.checkAlive(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "all %d components running; state in %s\n", len(componentNames()), c.cfg.StateDir)
	return nil
}

// writeAuthRegistryAccount makes the second registry's one account, with
// a fresh password in the state dir.
func (c *cluster) writeAuthRegistryAccount() error {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	password := hex.EncodeToString(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.state("registry-auth"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(c.state("registry-auth", "password"), []byte(password), 0o600); err != nil {
		return err
	}
	return os.WriteFile(c.state("registry-auth", "htpasswd"), []byte(authRegistryUser+":"+string(hash)+"\n"), 0o600)
}

func httpOK(url string) func(context.Context) error { return httpStatus(url, http.StatusOK) }

// httpStatus checks GET url answers want.
func httpStatus(url string, want int) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func unixDial(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// printEnv prints the lines a shell evals to point tests at the cluster.
func (c *cluster) printEnv() error {
	if _, err := os.Stat(c.kubeconfig()); err != nil {
		c.logf("warning: %s does not exist; is the cluster up?", c.kubeconfig())
	}
	fmt.Fprintf(c.out, "export KUBECONFIG=%s\n", c.kubeconfig())
	fmt.Fprintf(c.out, "export SKIFF_TEST_REGISTRY=%s\n", registryAddr)
	fmt.Fprintf(c.out, "export SKIFF_TEST_AUTH_REGISTRY=%s SKIFF_TEST_AUTH_USER=%s SKIFF_TEST_AUTH_PASSWORD=$(cat %s)\n",
		authRegistryAddr, authRegistryUser, c.state("registry-auth", "password"))
	// The edge (docs/testing.md, "The gateway").
	fmt.Fprintf(c.out, "export SKIFF_TEST_GATEWAY=%s/%s SKIFF_TEST_GATEWAY_HTTP=%s:80 SKIFF_TEST_GATEWAY_HTTPS=%s:443\n",
		gatewayNamespace, gatewayName, gatewayIP, gatewayIP)
	fmt.Fprintf(c.out, "export SKIFF_TEST_CLUSTER_ISSUER=%s SKIFF_TEST_ACME_ROOT=%s SKIFF_TEST_CA_ISSUER=%s SKIFF_TEST_CA_ROOT=%s\n",
		acmeIssuer, c.acmeRootFile(), caIssuer, c.caRootFile())
	fmt.Fprintf(c.out, "export SKIFF_TEST_INGRESS_CLASS=%s\n", ingressClass)
	// The bus runs with accounts (docs/testing.md, "The bus"): a user with
	// every right of the projects' account, the account's signing key,
	// the CA of its TLS port, and two users it refuses.
	na := c.natsAuthDir()
	fmt.Fprintf(c.out, "export SKIFF_TEST_NATS_CREDS=%s SKIFF_TEST_NATS_SIGNING_KEY=%s SKIFF_TEST_NATS_CA=%s\n",
		filepath.Join(na, "e2e.creds"), filepath.Join(na, "account-signing.nk"), filepath.Join(c.pkiDir(), "ca.crt"))
	fmt.Fprintf(c.out, "export SKIFF_TEST_NATS_EXPIRED_CREDS=%s SKIFF_TEST_NATS_STRANGER_CREDS=%s\n",
		filepath.Join(na, "expired.creds"), filepath.Join(na, "stranger.creds"))
	// Prometheus, scraping the annotated pods (docs/testing.md, "Prometheus").
	if u := c.prometheusURL(); u != "" {
		fmt.Fprintf(c.out, "export SKIFF_TEST_PROMETHEUS=%s\n", u)
	}
	return nil
}

// publishKubeProxyConfig puts the configuration kube-proxy runs with where
// kubeadm puts it, ConfigMap kube-system/kube-proxy (key config.conf), so
// that what reads a cluster's kube-proxy settings (skiff doctor's wake-up
// check) finds them here too.
func (c *cluster) publishKubeProxyConfig(ctx context.Context, cs kubernetes.Interface) error {
	data, err := os.ReadFile(c.state("kube-proxy", "config.yaml"))
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
		Data: map[string]string{"config.conf": string(data)}}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("publishing kube-proxy's configuration: %w", err)
	}
	return nil
}
