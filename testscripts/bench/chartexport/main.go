// Command chartexport writes the chart and values skiff deploys for one
// workload, so the deploy benchmark can hand the very same chart to the
// helm CLI:
//
//	go run ./testscripts/bench/chartexport PROJECT_DIR WORKLOAD IMAGE NAMESPACE OUT_DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/project"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: chartexport PROJECT_DIR WORKLOAD IMAGE NAMESPACE OUT_DIR")
		os.Exit(2)
	}
	dir, workload, image, ns, out := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	if err := export(dir, workload, image, ns, out); err != nil {
		fmt.Fprintln(os.Stderr, "chartexport:", err)
		os.Exit(1)
	}
}

func export(dir, workload, image, ns, out string) error {
	p, err := project.Load(filepath.Join(dir, project.FileName))
	if err != nil {
		return err
	}
	w, ok := p.Workload(workload)
	if !ok {
		return fmt.Errorf("no workload %s", workload)
	}
	if err := chart.WriteBase(filepath.Join(out, "chart")); err != nil {
		return err
	}
	data, err := yaml.Marshal(chart.Values(p, w, ns, image))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "values.yaml"), data, 0o644)
}
