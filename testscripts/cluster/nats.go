package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// natsNamespace is where the events' bus runs: the Service
// nats.nats.svc.cluster.local, clients on 4222, monitoring on 8222.
const natsNamespace = "nats"

// installNATS runs nats-server with JetStream on a file store in a
// PersistentVolume (a folder of the state dir, so the next `up` starts
// empty): a new pod of the server finds the events the last one stored,
// as on a real cluster, and a test may restart the bus mid-run.
func (c *cluster) installNATS(ctx context.Context, binary string, kubelet *procRecord) error {
	begin := time.Now()
	data := c.state("nats-data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, natsUID, natsUID); err != nil {
		return err
	}
	auth, err := writeNATSAuth(c.natsAuthDir())
	if err != nil {
		return fmt.Errorf("the bus's accounts: %w", err)
	}
	crt, err := os.ReadFile(filepath.Join(c.pkiDir(), "nats.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(c.pkiDir(), "nats.key"))
	if err != nil {
		return err
	}
	ref := registryAddr + "/skiff-cluster/nats-server:" + natsVersion
	if err := pushImage(ctx, binaryImage{Ref: ref, Binary: binary, User: "65532"}); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, o := range natsObjects(ref, data, map[string][]byte{"nats.conf": []byte(natsConfig(auth)), "tls.crt": crt, "tls.key": key}) {
		var err error
		switch o := o.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.PersistentVolume:
			_, err = cs.CoreV1().PersistentVolumes().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(natsNamespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.PersistentVolumeClaim:
			_, err = cs.CoreV1().PersistentVolumeClaims(natsNamespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(natsNamespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(natsNamespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the bus's %T: %w", o, err)
		}
	}
	if err := c.waitFor(ctx, "nats-server to be available", kubelet, 120*time.Second, func(ctx context.Context) error {
		return deploymentsAvailable(ctx, cs, natsNamespace, []string{"nats"})
	}); err != nil {
		return fmt.Errorf("%w\npods in %s:\n%s", err, natsNamespace, podReport(ctx, cs, natsNamespace))
	}
	c.logf("installed nats-server %s with JetStream and accounts (operator mode, TLS for tls:// clients) in %s", natsVersion, time.Since(begin).Round(time.Second))
	return nil
}

// natsUID runs nats-server and owns its store.
const natsUID = 65532

// natsAuthDir holds the bus's test users and signing key (ci.sh env).
func (c *cluster) natsAuthDir() string { return c.state("nats-auth") }

// natsObjects are the bus's namespace, store (a PersistentVolume on the
// host folder data, bound to its claim), configuration (a Secret: its
// accounts and TLS key), Service and Deployment.
func natsObjects(image, data string, config map[string][]byte) []any {
	labels := map[string]string{"app.kubernetes.io/name": "nats"}
	meta := metav1.ObjectMeta{Name: "nats", Namespace: natsNamespace, Labels: labels}
	uid := int64(natsUID)
	size := resource.MustParse("1Gi")
	none := ""
	return []any{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: natsNamespace, Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
		}}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "nats-data", Labels: labels}, Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              none,
			ClaimRef:                      &corev1.ObjectReference{Namespace: natsNamespace, Name: "nats-data"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data}},
		}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "nats-data", Namespace: natsNamespace, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: &none,
				VolumeName:       "nats-data",
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nats-config", Namespace: natsNamespace, Labels: labels}, Data: config},
		&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "client", Port: 4222, TargetPort: intstr.FromString("client")},
				{Name: "monitor", Port: 8222, TargetPort: intstr.FromString("monitor")},
			},
		}},
		&appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// One server owns the file store: never two at once.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: new(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   new(true),
						RunAsUser:      &uid,
						FSGroup:        &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "nats",
						Image: image,
						Args:  []string{"-c", "/etc/nats/nats.conf"},
						Ports: []corev1.ContainerPort{
							{Name: "client", ContainerPort: 4222},
							{Name: "monitor", ContainerPort: 8222},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/healthz?js-enabled-only=true", Port: intstr.FromString("monitor")}},
							PeriodSeconds: 1,
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: new(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   new(true),
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "config", MountPath: "/etc/nats", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{
						{Name: "data", VolumeSource: corev1.VolumeSource{
							PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "nats-data"}}},
						{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nats-config"}}},
					},
				},
			},
		}},
	}
}
