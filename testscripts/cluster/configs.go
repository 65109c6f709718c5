package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// Image names in the local registry. containerd pulls the pause image as
// every pod's sandbox.
const (
	pauseImage   = registryAddr + "/skiff-cluster/pause:v1"
	corednsImage = registryAddr + "/skiff-cluster/coredns:" + corednsVersion
)

// writeFile writes content to a path in the state dir, creating dirs.
func (c *cluster) writeFile(rel, content string) error {
	p := c.state(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// writeConfigs writes every component's config file into the state dir.
func (c *cluster) writeConfigs(bins *binaries) error {
	pki := c.pkiDir()
	files := map[string]string{
		"registry/config.yml": fmt.Sprintf(`version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, c.state("registry", "data"), registryAddr),

		"registry-auth/config.yml": fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: skiff-test-cluster
    path: %s
`, c.state("registry-auth", "data"), authRegistryAddr, c.state("registry-auth", "htpasswd")),

		"containerd/config.toml": fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, c.state("containerd", "root"), c.state("containerd", "state"), c.containerdSock(),
			c.state("containerd", "opt"), pauseImage, bins.runcWrapper,
			c.state("cni", "net.d"), c.state("containerd", "certs.d")),

		"cni/net.d/10-skiff.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, cniNetName, bridgeName, c.state("cni", "ipam"), podCIDR, podGateway),

		// The host's resolv.conf names a resolver outside this machine;
		// pods get no upstream DNS at all.
		"kubelet/resolv.conf": "# skiff test cluster: no upstream DNS\n",

		"kubelet/config.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
tlsCertFile: %s
tlsPrivateKeyFile: %s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDomain: %s
clusterDNS: [%s]
resolvConf: %s
podCIDR: %s
podLogsDir: %s
hairpinMode: hairpin-veth
serializeImagePulls: false
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
logging:
  verbosity: %d
`, nodeIP, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "kubelet.crt"), filepath.Join(pki, "kubelet.key"),
			c.containerdSock(), clusterDomain, dnsServiceIP, c.state("kubelet", "resolv.conf"), podCIDR,
			c.state("kubelet", "pod-logs"), c.cfg.KubeletV),

		// conntrack zeros and localhostNodePorts=false keep kube-proxy
		// from changing the host's sysctls. minSyncPeriod 100ms (its
		// default is 1s) programs a woken pod's Service address within
		// 0.1 s of its endpoint turning ready, not up to a second after
		// the previous sync: docs/serverless.md recommends it, skiff
		// doctor reads it where kube-proxy's ConfigMap has it.
		"kube-proxy/config.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["%s/32"]
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  minSyncPeriod: 100ms
`, nodeName, podCIDR, nodeIP, c.state("kube-proxy.kubeconfig")),
	}
	for _, host := range []string{"127.0.0.1:5000", "localhost:5000", authRegistryAddr} {
		files["containerd/certs.d/"+host+"/hosts.toml"] = fmt.Sprintf(`server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, host, host)
	}
	for _, kc := range []struct{ file, user string }{
		{"admin.kubeconfig", "admin"},
		{"controller-manager.kubeconfig", "controller-manager"},
		{"scheduler.kubeconfig", "scheduler"},
		{"kubelet.kubeconfig", "kubelet"},
		{"kube-proxy.kubeconfig", "kube-proxy"},
	} {
		files[kc.file] = kubeconfigYAML(pki, kc.user)
	}
	for rel, content := range files {
		if err := c.writeFile(rel, content); err != nil {
			return err
		}
	}
	return nil
}

func apiURL() string { return "https://" + nodeIP + ":" + apiPort }

func kubeconfigYAML(pki, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: skiff
  context:
    cluster: skiff
    user: %s
current-context: skiff
`, apiURL(), filepath.Join(pki, "ca.crt"), user,
		filepath.Join(pki, user+".crt"), filepath.Join(pki, user+".key"), user)
}

// flags turns name=value pairs into --name=value arguments.
func flags(kv ...string) []string {
	out := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, "--"+kv[i]+"="+kv[i+1])
	}
	return out
}

func pkiFile(pki, name string) string { return filepath.Join(pki, name) }

// componentArgs returns each component's command line.
func (c *cluster) componentArgs(b *binaries) map[string][]string {
	pki := c.pkiDir()
	p := func(n string) string { return pkiFile(pki, n) }
	return map[string][]string{
		"registry":      {"/usr/bin/docker-registry", "serve", c.state("registry", "config.yml")},
		"registry-auth": {"/usr/bin/docker-registry", "serve", c.state("registry-auth", "config.yml")},
		"containerd":    {"/usr/bin/containerd", "--config", c.state("containerd", "config.toml")},
		"etcd": append([]string{b.etcd}, flags(
			"name", nodeName,
			"data-dir", c.state("etcd"),
			"listen-client-urls", etcdClientURL,
			"advertise-client-urls", etcdClientURL,
			"listen-peer-urls", etcdPeerURL,
			"initial-advertise-peer-urls", etcdPeerURL,
			"initial-cluster", nodeName+"="+etcdPeerURL,
			"unsafe-no-fsync", "true",
			"log-level", "warn",
		)...),
		"kube-apiserver": append([]string{b.apiserver}, flags(
			"advertise-address", nodeIP,
			"bind-address", nodeIP,
			"secure-port", apiPort,
			"etcd-servers", etcdClientURL,
			"client-ca-file", p("ca.crt"),
			"tls-cert-file", p("apiserver.crt"),
			"tls-private-key-file", p("apiserver.key"),
			"kubelet-client-certificate", p("apiserver-kubelet-client.crt"),
			"kubelet-client-key", p("apiserver-kubelet-client.key"),
			"kubelet-certificate-authority", p("ca.crt"),
			"kubelet-preferred-address-types", "InternalIP",
			"authorization-mode", "Node,RBAC",
			"enable-admission-plugins", "NodeRestriction",
			"service-cluster-ip-range", serviceCIDR,
			"service-account-issuer", "https://kubernetes.default.svc."+clusterDomain,
			"service-account-key-file", p("sa.pub"),
			"service-account-signing-key-file", p("sa.key"),
			"allow-privileged", "true",
			"cert-dir", c.state("kube-apiserver"),
			"profiling", "false",
			// The aggregation layer, for extension API servers such as
			// KEDA's external metrics adapter. The API server runs on the
			// host, next to the pod bridge: it dials the endpoints directly.
			"requestheader-client-ca-file", p("front-proxy-ca.crt"),
			"requestheader-allowed-names", "front-proxy-client",
			"requestheader-username-headers", "X-Remote-User",
			"requestheader-group-headers", "X-Remote-Group",
			"requestheader-extra-headers-prefix", "X-Remote-Extra-",
			"proxy-client-cert-file", p("front-proxy-client.crt"),
			"proxy-client-key-file", p("front-proxy-client.key"),
			"enable-aggregator-routing", "true",
		)...),
		"kube-controller-manager": append([]string{b.controllerManager}, flags(
			"kubeconfig", c.state("controller-manager.kubeconfig"),
			"authentication-kubeconfig", c.state("controller-manager.kubeconfig"),
			"authorization-kubeconfig", c.state("controller-manager.kubeconfig"),
			"bind-address", "127.0.0.1",
			"cert-dir", c.state("kube-controller-manager"),
			"cluster-signing-cert-file", p("ca.crt"),
			"cluster-signing-key-file", p("ca.key"),
			"root-ca-file", p("ca.crt"),
			"service-account-private-key-file", p("sa.key"),
			"use-service-account-credentials", "true",
			"service-cluster-ip-range", serviceCIDR,
			"leader-elect", "false",
			"profiling", "false",
		)...),
		"kube-scheduler": append([]string{b.scheduler}, flags(
			"kubeconfig", c.state("scheduler.kubeconfig"),
			"authentication-kubeconfig", c.state("scheduler.kubeconfig"),
			"authorization-kubeconfig", c.state("scheduler.kubeconfig"),
			"bind-address", "127.0.0.1",
			"cert-dir", c.state("kube-scheduler"),
			"leader-elect", "false",
			"profiling", "false",
		)...),
		"kubelet": append([]string{b.kubelet}, flags(
			"config", c.state("kubelet", "config.yaml"),
			"kubeconfig", c.state("kubelet.kubeconfig"),
			"node-ip", nodeIP,
			"hostname-override", nodeName,
			"root-dir", c.state("kubelet", "root"),
			"cert-dir", c.state("kubelet", "pki"),
		)...),
		"kube-proxy": append([]string{b.proxy}, flags(
			"config", c.state("kube-proxy", "config.yaml"),
		)...),
	}
}
