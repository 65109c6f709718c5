package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/project"
)

func TestDeployAccessOfLiveConfig(t *testing.T) {
	p := &project.Project{Workloads: []project.Workload{{Name: "orders"}}}
	roles := doctor.Access{Group: "rbac.authorization.k8s.io", Resource: "roles", Verb: "create", Namespaced: true}
	watch := doctor.Access{Resource: "configmaps", Verb: "watch", Namespaced: true}
	if got := deployAccess(p); slices.Contains(got, roles) || slices.Contains(got, watch) {
		t.Errorf("a project without liveConfig is checked for %v or %v", roles, watch)
	}
	p.Workloads[0].LiveConfig = true
	got := deployAccess(p)
	bindings := doctor.Access{Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Verb: "create", Namespaced: true}
	for _, want := range []doctor.Access{roles, bindings, watch} {
		if !slices.Contains(got, want) {
			t.Errorf("a live project is not checked for %v", want)
		}
	}
}

func TestDeployAccessOfSchedules(t *testing.T) {
	cronjobs := doctor.Access{Group: "batch", Resource: "cronjobs", Verb: "create", Namespaced: true}
	p := &project.Project{Workloads: []project.Workload{{Name: "thumbs", Triggers: []project.Trigger{{Event: "a.b"}}}}}
	if slices.Contains(deployAccess(p), cronjobs) {
		t.Error("a project without schedules is checked for CronJobs")
	}
	p.Workloads[0].Triggers = append(p.Workloads[0].Triggers, project.Trigger{Schedule: "@hourly"})
	if !slices.Contains(deployAccess(p), cronjobs) {
		t.Error("a project with a schedule is not checked for CronJobs")
	}
}

// On a terminal, doctor shows a spinner while its checks run (they take
// seconds): not a silent wait.
func TestDoctorSpinsOnATerminal(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, true)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - name: hello\n    kind: function\n    lang: go\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Globals.Kubeconfig = filepath.Join(dir, "no-kubeconfig")
	opts := &DoctorOptions{Factory: f, Run: func(context.Context, string, ...string) (string, error) {
		return "go version go1.26.0 linux/amd64", nil
	}}
	_ = doctorRun(context.Background(), opts)
	if !strings.Contains(errOut.String(), "checking toolchains, registry and cluster") {
		t.Errorf("no spinner on stderr:\n%q", errOut.String())
	}
}
