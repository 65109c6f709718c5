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

// inputs: npm reads the lockfile and package.json, both in the folder.
func (n *nodeBuilder) inputs(context.Context, Request) ([]input, error) { return nil, nil }

type packageJSON struct {
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	Scripts         map[string]string `json:"scripts"`
}

// packageLock is package-lock.json (and node_modules/.package-lock.json):
// "packages" from lockfileVersion 2 on, "dependencies" in version 1.
type packageLock struct {
	LockfileVersion int                      `json:"lockfileVersion"`
	Packages        map[string]lockPackage   `json:"packages"`
	Dependencies    map[string]lockPackageV1 `json:"dependencies"`
}

type lockPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Dev     bool   `json:"dev"`
	Link    bool   `json:"link"`
}

type lockPackageV1 struct {
	Version      string                   `json:"version"`
	Dev          bool                     `json:"dev"`
	Dependencies map[string]lockPackageV1 `json:"dependencies"`
}

func readJSON(file string, v any, fix string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w; %s", file, err, fix)
	}
	return nil
}

func (n *nodeBuilder) build(ctx context.Context, req Request, src *sourceFilter) (*langOutput, error) {
	name := req.Workload.Name
	var pkg packageJSON
	if err := readJSON(filepath.Join(req.Dir, "package.json"), &pkg, "fix the JSON"); err != nil {
		return nil, fmt.Errorf("%s has no readable package.json (%w); a %s workload needs one", req.Dir, err, req.Workload.Lang)
	}
	var lock *packageLock
	if err := readJSON(filepath.Join(req.Dir, "package-lock.json"), &lock, "run `npm install` to rewrite it"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if lock == nil && (len(pkg.Dependencies) > 0 || (n.typescript && len(pkg.DevDependencies) > 0)) {
		return nil, fmt.Errorf("%s has dependencies but no package-lock.json; run `npm install` in %s and commit the lockfile, so builds are reproducible", name, req.Dir)
	}

	tmp, err := os.MkdirTemp("", "skiff-node-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "app")
	// The copy keeps the workload's .npmrc for npm; the layers do not.
	if err := copyTree(work, req.Dir, src.build); err != nil {
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
	} else if len(pkg.Dependencies) > 0 {
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
	// The copy was filtered already; what the build wrote stays, but never
	// node_modules (its own layer) nor a secret such as .npmrc.
	lw := newLayerWriter(req.Epoch)
	lw.Dir(AppDir, 0o755, RootID, RootID)
	err = lw.Tree(AppDir, work, func(rel string, d fs.DirEntry) bool {
		return rel == "node_modules" || (!d.IsDir() && isSecret(path.Base(rel)))
	})
	if err != nil {
		return nil, err
	}
	l, err := lw.Layer(types.OCILayer)
	if err != nil {
		return nil, err
	}
	out.Layers = append(out.Layers, l)

	main, err := NodeMain(work)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(main))); err != nil {
		return nil, fmt.Errorf("%s: the entry point %s (package.json \"main\") does not exist after the build; fix \"main\" in package.json", name, main)
	}
	out.Entrypoint = []string{"node", path.Join(AppDir, main)}
	if out.Packages, err = npmPackages(mods, lock); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// npmPackages lists the packages npm installed, from the hidden lockfile
// it writes into node_modules, else from the lockfile's v1 "dependencies".
func npmPackages(mods string, lock *packageLock) ([]Package, error) {
	var pkgs []Package
	add := func(name, version string) {
		pkgs = append(pkgs, Package{Name: name, Version: version, PURL: "pkg:npm/" + strings.ReplaceAll(name, "@", "%40") + "@" + version})
	}
	var hidden *packageLock
	if err := readJSON(filepath.Join(mods, ".package-lock.json"), &hidden, "remove node_modules and build again"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	switch {
	case hidden != nil:
		lock = hidden
	case lock == nil:
		return nil, nil
	}
	for p, e := range lock.Packages {
		if p == "" || e.Dev || e.Link || !strings.Contains(p, "node_modules/") {
			continue
		}
		pn := e.Name
		if pn == "" {
			pn = p[strings.LastIndex(p, "node_modules/")+len("node_modules/"):]
		}
		add(pn, e.Version)
	}
	if len(lock.Packages) == 0 {
		var walk func(deps map[string]lockPackageV1)
		walk = func(deps map[string]lockPackageV1) {
			for n, d := range deps {
				if !d.Dev {
					add(n, d.Version)
					walk(d.Dependencies)
				}
			}
		}
		walk(lock.Dependencies)
	}
	return pkgs, nil
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
	err := walkSource(dir, nil, func(_, rel string, d fs.DirEntry) error {
		if !d.IsDir() && isNative(rel) {
			found = append(found, rel)
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
	return fmt.Errorf("the dependencies include %s built for %s (%s), which cannot run on %s; build those platforms on a host of that platform, or leave them out of the platforms built",
		what, hostPlatform(), strings.Join(found, ", "), strings.Join(foreign, ", "))
}
