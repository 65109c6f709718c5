package hostrun

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/project"
)

// ConfigEnv is what a `liveConfig: true` workload run on this machine
// gets so that the templates' plumbing follows its config without a
// restart: the name the chart gives its ConfigMap (SKIFF_CONFIG_MAP) and
// the folder WriteConfig keeps (SKIFF_CONFIG_FILES). With no Kubernetes
// API, the plumbing reads that folder every 2 s, as it does a pod's
// mounted ConfigMap while the API does not answer.
// KUBERNETES_SERVICE_HOST is emptied (a shell inside a pod has one), so
// the plumbing does not ask a cluster for a ConfigMap that is not there.
func ConfigEnv(w *project.Workload, dir string) []string {
	return []string{"SKIFF_CONFIG_MAP=" + w.Name + "-config", "SKIFF_CONFIG_FILES=" + dir, "KUBERNETES_SERVICE_HOST="}
}

// WriteConfig makes dir hold values, a file per key, the way the kubelet
// updates a mounted ConfigMap: the files of a version are written in a
// folder of their own, then the symbolic link ..data is swapped to it in
// one rename, so a reader sees the old values or the new ones, never a
// mix; each key is a link through ..data.
func WriteConfig(dir string, values map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k := range values {
		if !project.ValidConfigKey(k) || strings.HasPrefix(k, ".") {
			return fmt.Errorf("config key %q cannot be a file name", k)
		}
	}
	gen := "..v" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Mkdir(filepath.Join(dir, gen), 0o755); err != nil {
		return err
	}
	for k, v := range values {
		if err := os.WriteFile(filepath.Join(dir, gen, k), []byte(v), 0o644); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(gen, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") {
			if _, ok := values[name]; !ok {
				_ = os.Remove(filepath.Join(dir, name)) // a key no longer there
			}
		}
	}
	for k := range values {
		link := filepath.Join(dir, k)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", k) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			return err
		}
	}
	if old != "" && old != gen {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
