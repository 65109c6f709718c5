package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

const scaledManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/acme
workloads:
  - name: orders
    kind: function
    lang: go
    scale: {min: 0, max: 5}
    config: {GREETING: hello}
`

// scaledOrdersManifest is what a release of the scaled orders holds: a
// Deployment KEDA scales, at zero pods.
const scaledOrdersManifest = `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
`

// errHelmWait is what Helm's own wait says on the fake cluster: a scaled
// workload must never be left to it (it knows nothing of KEDA, and a
// workload at zero pods can hold it until its timeout).
var errHelmWait = errors.New("Helm's own wait was used")

// scaledCluster is a project with a scale-to-zero workload deployed twice
// (revisions 1 and 2) on a fake cluster whose Helm wait fails.
func scaledCluster(t *testing.T) (*cmdutil.Factory, *storage.Storage, *bytes.Buffer) {
	t.Helper()
	f, dir, errOut := testFactoryBuffers(t, false)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(scaledManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(readyDeployment("shop", 0))
	releases := storage.Init(driver.NewMemory())
	for v, img := range []string{ordersImage, strings.Replace(ordersImage, "01", "02", 1)} {
		status := release.StatusSuperseded
		if v == 1 {
			status = release.StatusDeployed
		}
		err := releases.Create(&release.Release{Name: "shop-orders", Namespace: "shop", Version: v + 1, Manifest: scaledOrdersManifest,
			Info:   &release.Info{Status: status, LastDeployed: helmtime.Now()},
			Chart:  &helmchart.Chart{Metadata: &helmchart.Metadata{Name: "skiff", Version: "0.1.0", APIVersion: "v2"}},
			Config: map[string]any{"project": "shop", "workload": "orders", "image": map[string]any{"ref": img}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Session = factory.Sessions(func(context.Context, string, func(string, ...any)) (*kube.Client, *deploy.Deployer, error) {
		kc := &kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}, WaitError: errHelmWait}
		d := &deploy.Deployer{Config: func(string) (*action.Configuration, error) {
			return &action.Configuration{Releases: releases, KubeClient: kc, Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}, nil
		}}
		return &kube.Client{Clientset: cs, ContextName: "fake"}, d, nil
	}, f.Getenv)
	return f, releases, errOut
}

// config --apply on a scale-to-zero workload waits as deploy does (the
// target's wait: rolled out, KEDA's objects, a wake-up), not with Helm's.
func TestConfigApplyOnAScaledWorkloadWaitsLikeDeploy(t *testing.T) {
	f, releases, errOut := scaledCluster(t)
	code := run(context.Background(), f, []string{"config", "set", "GREETING=hi", "--apply"})
	last, err := releases.Last("shop-orders")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || last.Version != 3 || last.Info.Status != release.StatusDeployed {
		t.Fatalf("config set --apply exited %d; the last revision is %d, %s:\n%s", code, last.Version, last.Info.Status, errOut)
	}
	if got := last.Config["config"].(map[string]any)["GREETING"]; got != "hi" {
		t.Errorf("the new revision's config is %v", last.Config["config"])
	}
}

// A rollback of a scaled workload waits with the target's wait, never
// with Helm's own.
func TestRollbackOfAScaledWorkloadUsesItsTargetsWait(t *testing.T) {
	f, releases, errOut := scaledCluster(t)
	code := run(context.Background(), f, []string{"rollback", "orders"})
	last, err := releases.Last("shop-orders")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || last.Version != 3 || !strings.HasSuffix(deploy.ImageOf(last), "01") {
		t.Fatalf("rollback exited %d; the last revision is %d running %s:\n%s", code, last.Version, deploy.ImageOf(last), errOut)
	}
}
