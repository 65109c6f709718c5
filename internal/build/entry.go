package build

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PythonMain returns the entry file of the Python workload in dir: the
// first of mainCandidates that exists.
func PythonMain(dir string) (string, error) {
	for _, c := range mainCandidates {
		if _, err := os.Stat(filepath.Join(dir, c)); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("no entry point: add one of %s to %s", strings.Join(mainCandidates, ", "), dir)
}

// NodeMain returns the entry file of the Node.js workload in dir: package.json
// "main", else index.js. The file may not exist yet (TypeScript).
func NodeMain(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("reading package.json: %w", err)
	}
	var pkg struct {
		Main string `json:"main"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, "package.json"), err)
	}
	if pkg.Main == "" {
		return "index.js", nil
	}
	return filepath.ToSlash(filepath.Clean(pkg.Main)), nil
}
