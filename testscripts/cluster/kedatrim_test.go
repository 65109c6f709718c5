package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A registry shaped like KEDA's: the kept cases, their imports and the
// default stay; the others and the imports only they used go.
const fakeRegistry = `package scaling

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"example.com/keda/v2/pkg/other"
	"example.com/keda/v2/pkg/scalers"
)

func buildScaler(ctx context.Context, triggerType string) (scalers.Scaler, error) {
	// TRIGGERS-START
	switch triggerType {
	case "activemq":
		// a comment of a removed case
		return other.NewActiveMQScaler(ctx)
	case "cpu":
		return scalers.NewCPUMemoryScaler(corev1.ResourceCPU)
	case "external", "external-push":
		return scalers.NewExternalScaler()
	case "memory":
		return scalers.NewCPUMemoryScaler(corev1.ResourceMemory)
	case "nats-jetstream":
		return scalers.NewNATSJetStreamScaler()
	default:
		return nil, fmt.Errorf("no scaler found for type: %s", triggerType)
	}
	// TRIGGERS-END
}
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTrimScalerSwitch(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scalers_builder.go")
	writeFile(t, file, fakeRegistry)
	src, err := trimScalerSwitch(file, []string{"cpu", "external-push"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(src)
	for _, want := range []string{`case "cpu":`, `case "external", "external-push":`, "default:", `corev1 "k8s.io/api/core/v1"`, `"example.com/keda/v2/pkg/scalers"`, `"fmt"`} {
		if !strings.Contains(got, want) {
			t.Errorf("trimmed registry lacks %s:\n%s", want, got)
		}
	}
	for _, gone := range []string{"activemq", "removed case", "pkg/other"} {
		if strings.Contains(got, gone) {
			t.Errorf("trimmed registry still has %s:\n%s", gone, got)
		}
	}
}

// A trigger type the registry does not have is an error naming it: KEDA
// renamed or removed it, and the list must change with it.
func TestTrimScalerSwitchMissingType(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scalers_builder.go")
	writeFile(t, file, fakeRegistry)
	_, err := trimScalerSwitch(file, []string{"cpu", "rabbitmq"})
	if err == nil || !strings.Contains(err.Error(), `"rabbitmq"`) {
		t.Fatalf("err = %v, want one naming rabbitmq", err)
	}
}

// The copy leaves out the other scalers' files and every test, and holds
// the trimmed registry; the rest of the module is copied as it is.
func TestTrimKEDA(t *testing.T) {
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/keda/v2\n")
	writeFile(t, filepath.Join(mod, "pkg", "scaling", "scalers_builder.go"), fakeRegistry)
	for _, f := range append([]string{"activemq_scaler.go", "activemq_scaler_test.go", "scaler_test.go"}, kedaScalerFiles...) {
		writeFile(t, filepath.Join(mod, "pkg", "scalers", f), "package scalers\n")
	}
	writeFile(t, filepath.Join(mod, "pkg", "scalers", "azure", "azure.go"), "package azure\n")
	dst := filepath.Join(t.TempDir(), "keda")
	if err := trimKEDA(mod, dst); err != nil {
		t.Fatal(err)
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(dst, rel))
		return err == nil
	}
	for _, f := range append([]string{"go.mod", "pkg/scalers/azure/azure.go", "pkg/scalers/skiff_trimmed.go"}, kedaScalerFiles...) {
		if !strings.Contains(f, "/") && f != "go.mod" {
			f = "pkg/scalers/" + f
		}
		if !exists(f) {
			t.Errorf("%s not copied", f)
		}
	}
	for _, f := range []string{"pkg/scalers/activemq_scaler.go", "pkg/scalers/activemq_scaler_test.go", "pkg/scalers/scaler_test.go"} {
		if exists(f) {
			t.Errorf("%s copied", f)
		}
	}
	reg, err := os.ReadFile(filepath.Join(dst, "pkg", "scaling", "scalers_builder.go"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(reg), "activemq") {
		t.Errorf("the copy's registry is not trimmed:\n%s", reg)
	}
}
