package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nodeBuilder installs production dependencies with npm on the host (and
// compiles TypeScript) and adds node_modules and the sources as layers.
type nodeBuilder struct {
	env        []string
	typescript bool
}

var npmFlags = []string{"--no-audit", "--no-fund", "--prefer-offline"}

func (n *nodeBuilder) toolchain(ctx context.Context) (string, error) {
	nv, err := run(ctx, "", n.env, "node", "--version")
	if err != nil {
		return "", fmt.Errorf("finding Node.js: %w; install node and npm and put them on PATH", err)
	}
	mv, err := run(ctx, "", n.env, "npm", "--version")
	if err != nil {
		return "", fmt.Errorf("finding npm: %w; install npm and put it on PATH", err)
	}
	return nv + mv + envValues(n.env, "npm_config_", "NPM_CONFIG_"), nil
}

type packageJSON struct {
	Main            string            `json:"main"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	Scripts         map[string]string `json:"scripts"`
}

type packageLock struct {
	Packages map[string]struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Dev     bool   `json:"dev"`
		Link    bool   `json:"link"`
	} `json:"packages"`
}

func (n *nodeBuilder) build(ctx context.Context, req Request) (*langOutput, error) {
	name := req.Workload.Name
	data, err := os.ReadFile(filepath.Join(req.Dir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("%s has no readable package.json (%v); a %s workload needs one", req.Dir, err, req.Workload.Lang)
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, fmt.Errorf("%s/package.json: %w; fix the JSON", req.Dir, err)
	}
	var lock *packageLock
	if data, err := os.ReadFile(filepath.Join(req.Dir, "package-lock.json")); err == nil {
		lock = &packageLock{}
		if err := json.Unmarshal(data, lock); err != nil {
			return nil, fmt.Errorf("%s/package-lock.json: %w; run `npm install` to rewrite it", req.Dir, err)
		}
	} else if len(pkg.Dependencies) > 0 || (n.typescript && len(pkg.DevDependencies) > 0) {
		return nil, fmt.Errorf("%s has dependencies but no package-lock.json; run `npm install` in %s and commit the lockfile, so builds are reproducible", name, req.Dir)
	}

	tmp, err := os.MkdirTemp("", "skiff-node-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "app")
	if err := copyTree(work, req.Dir, skipSource(req.Workload.Lang)); err != nil {
		return nil, fmt.Errorf("copying the sources of %s: %w", name, err)
	}
	npm := func(args ...string) error {
		if _, err := run(ctx, work, n.env, "npm", append(args, npmFlags...)...); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if n.typescript {
		if _, ok := pkg.Scripts["build"]; !ok {
			return nil, fmt.Errorf("%s/package.json has no \"build\" script; add one that compiles the TypeScript (e.g. \"build\": \"tsc\")", req.Dir)
		}
		if err := npm("ci"); err != nil {
			return nil, err
		}
		if _, err := run(ctx, work, n.env, "npm", "run", "build"); err != nil {
			return nil, fmt.Errorf("compiling %s failed: %w\nfix the error above and build again", name, err)
		}
		if err := npm("prune", "--omit=dev"); err != nil {
			return nil, err
		}
	} else if lock != nil && len(lock.Packages) > 1 {
		if err := npm("ci", "--omit=dev"); err != nil {
			return nil, err
		}
	}

	out := &langOutput{Env: []string{"NODE_ENV=production"}}
	mods := filepath.Join(work, "node_modules")
	if entries, err := os.ReadDir(mods); err == nil && len(entries) > 0 {
		if err := checkNative(mods, req.Platforms, func(rel string) bool { return strings.HasSuffix(rel, ".node") }, "native Node.js addons"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		lw := newLayerWriter(req.Epoch)
		lw.Dir(AppDir, 0o755, RootID, RootID)
		if err := lw.Tree(path.Join(AppDir, "node_modules"), mods, nil); err != nil {
			return nil, err
		}
		l, err := lw.Layer(types.OCILayer)
		if err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, l)
	}
	lw := newLayerWriter(req.Epoch)
	lw.Dir(AppDir, 0o755, RootID, RootID)
	if err := lw.Tree(AppDir, work, func(rel string, _ fs.DirEntry) bool { return rel == "node_modules" }); err != nil {
		return nil, err
	}
	l, err := lw.Layer(types.OCILayer)
	if err != nil {
		return nil, err
	}
	out.Layers = append(out.Layers, l)

	main := pkg.Main
	if main == "" {
		main = "index.js"
	}
	if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(main))); err != nil {
		return nil, fmt.Errorf("%s: the entry point %s (package.json \"main\") does not exist after the build; fix \"main\" in package.json", name, main)
	}
	out.Entrypoint = []string{"node", path.Join(AppDir, main)}
	if lock != nil {
		for p, e := range lock.Packages {
			if p == "" || e.Dev || e.Link || !strings.Contains(p, "node_modules/") {
				continue
			}
			pn := e.Name
			if pn == "" {
				pn = p[strings.LastIndex(p, "node_modules/")+len("node_modules/"):]
			}
			out.Packages = append(out.Packages, Package{Name: pn, Version: e.Version, PURL: "pkg:npm/" + strings.ReplaceAll(pn, "@", "%40") + "@" + e.Version})
		}
	}
	return out, nil
}

// hostPlatform is the platform the host's toolchains build for.
func hostPlatform() string { return "linux/" + runtime.GOARCH }

// checkNative fails when dir holds native code (as isNative says) and a
// platform other than the host's is requested: skiff installs dependencies
// once on the host and cannot cross-compile them.
func checkNative(dir string, plats []v1.Platform, isNative func(rel string) bool, what string) error {
	var foreign []string
	for _, p := range plats {
		if pp := p.OS + "/" + p.Architecture; pp != hostPlatform() {
			foreign = append(foreign, p.String())
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.IsDir() && isNative(filepath.ToSlash(rel)) {
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	if len(found) > 3 {
		found = append(found[:3], "...")
	}
	return fmt.Errorf("the dependencies include %s built for %s (%s), which cannot run on %s; build those platforms on a host of that platform, or drop them from --platform",
		what, hostPlatform(), strings.Join(found, ", "), strings.Join(foreign, ", "))
}

// copyTree copies the regular files, folders and symlinks of src to dst.
func copyTree(dst, src string, skip func(string, fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip != nil && skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return os.MkdirAll(target, 0o755)
		case t&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return errors.New(p + " is a special file that cannot go into an image; move it out of the workload folder")
	})
}
