package build

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pythonDepsDir is the folder under AppDir that holds the installed
// dependencies; PYTHONPATH points at it.
const pythonDepsDir = ".deps"

// pythonBuilder installs requirements.txt with pip --target on the host and
// adds the dependencies and the sources as layers.
type pythonBuilder struct {
	env []string
}

// pythonVersions prints Python's version and pip's, in one process: pip's
// own --version imports its command line, a third of a second on every
// build (and skiff dev's every cycle).
const pythonVersions = `import sys
print(sys.version)
try:
    import importlib.metadata as m
    print("pip", m.version("pip"))
except Exception:
    pass`

func (py *pythonBuilder) toolchain(ctx context.Context) (string, error) {
	v, err := run(ctx, "", py.env, "python3", "-c", pythonVersions)
	if err != nil {
		return "", fmt.Errorf("finding Python: %w; install python3 and put it on PATH", err)
	}
	return v + envValues(py.env, "PIP_"), nil
}

func (py *pythonBuilder) inputs(_ context.Context, req Request) ([]input, error) {
	return pythonInputs(req.Dir, py.env)
}

// mainCandidates are the files tried, in order, as a Python entry point.
var mainCandidates = []string{"main.py", "app.py", "server.py", "__main__.py"}

func (py *pythonBuilder) build(ctx context.Context, req Request, src *sourceFilter) (*langOutput, error) {
	name := req.Workload.Name
	main, err := PythonMain(req.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s has %w", name, err)
	}
	out := &langOutput{
		Entrypoint: []string{"python3", path.Join(AppDir, main)},
		Env: []string{"PYTHONPATH=" + path.Join(AppDir, pythonDepsDir),
			"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"},
	}
	reqs := filepath.Join(req.Dir, "requirements.txt")
	if hasRequirements(reqs) {
		tmp, err := os.MkdirTemp("", "skiff-python-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		target := filepath.Join(tmp, "deps")
		_, err = run(ctx, req.Dir, py.env, "python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
			"--no-compile", "--no-warn-script-location", "--target", target, "-r", reqs)
		if err != nil {
			return nil, fmt.Errorf("installing the requirements of %s failed: %w\nfix requirements.txt (or the package index settings, e.g. PIP_INDEX_URL, PIP_FIND_LINKS) and build again", name, err)
		}
		if err := dropDirectURLs(target); err != nil {
			return nil, fmt.Errorf("cleaning the dependencies of %s: %w", name, err)
		}
		if err := checkNative(target, req.Platforms, func(rel string) bool {
			return strings.HasSuffix(rel, ".so") || strings.Contains(rel, ".so.")
		}, "native Python extensions"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		lw := newLayerWriter(req.Epoch)
		lw.Dir(AppDir, 0o755, RootID, RootID)
		err = lw.Tree(path.Join(AppDir, pythonDepsDir), target, func(rel string, _ fs.DirEntry) bool {
			return filepath.Base(rel) == "__pycache__"
		})
		if err != nil {
			return nil, err
		}
		if err := py.compile(ctx, lw); err != nil {
			return nil, fmt.Errorf("compiling the dependencies of %s: %w", name, err)
		}
		l, err := lw.Layer(types.OCILayer)
		if err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, l)
		out.Packages = pythonPackages(target)
	}
	lw := newLayerWriter(req.Epoch)
	lw.Dir(AppDir, 0o755, RootID, RootID)
	if err := lw.Tree(AppDir, req.Dir, src.image); err != nil {
		return nil, err
	}
	if err := py.compile(ctx, lw); err != nil {
		return nil, fmt.Errorf("compiling %s: %w", name, err)
	}
	l, err := lw.Layer(types.OCILayer)
	if err != nil {
		return nil, err
	}
	out.Layers = append(out.Layers, l)
	return out, nil
}

// pythonCompile compiles the sources it reads as JSON lines from stdin
// ({"src": host path, "dfile": path in the image}) with the Python that
// will run them, each to a file in the folder of its first argument, and
// prints, as JSON lines, the .pyc's path in the image (in __pycache__,
// named with this Python's cache tag) and where it wrote it. Hash-checked
// bytecode: it depends on the source's bytes only (not its time, so
// builds stay reproducible), and a source changed later in a container
// (skiff dev's live sync) is compiled again rather than run stale. A file
// that does not compile is left out: Python reports it where it imports it.
const pythonCompile = `import importlib.util, json, os, py_compile, sys
out = sys.argv[1]
for i, line in enumerate(sys.stdin):
    f = json.loads(line)
    cfile = os.path.join(out, str(i) + ".pyc")
    try:
        py_compile.compile(f["src"], cfile=cfile, dfile=f["dfile"], doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    except py_compile.PyCompileError:
        continue
    print(json.dumps({"pyc": importlib.util.cache_from_source(f["dfile"]), "file": cfile}))`

// compile adds the bytecode of the .py files of lw to it: without it, a
// container compiles every module it imports on each start (its root file
// system is read-only, and the image sets PYTHONDONTWRITEBYTECODE).
func (py *pythonBuilder) compile(ctx context.Context, lw *layerWriter) error {
	var in bytes.Buffer
	var sources []string
	for p, e := range lw.entries {
		if e.Src != "" && strings.HasSuffix(p, ".py") {
			sources = append(sources, p)
		}
	}
	if len(sources) == 0 {
		return nil
	}
	slices.Sort(sources) // the same order, so the same bytes, on every build
	for _, p := range sources {
		line, err := json.Marshal(map[string]string{"src": lw.entries[p].Src, "dfile": p})
		if err != nil {
			return err
		}
		in.Write(append(line, '\n'))
	}
	tmp, err := os.MkdirTemp("", "skiff-pyc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "python3", "-c", pythonCompile, tmp)
	cmd.Env = append(slices.Clone(py.env), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("python3 -c (py_compile): %w\n%s", err, indent(strings.TrimSpace(stderr.String())))
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r struct{ Pyc, File string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("py_compile said %q: %w", sc.Text(), err)
		}
		data, err := os.ReadFile(r.File)
		if err != nil {
			return err
		}
		lw.File(r.Pyc, data, 0o644)
	}
	return sc.Err()
}

// dropDirectURLs removes the direct_url.json that pip writes into the
// *.dist-info of a distribution installed from a path or URL: it holds the
// absolute file:// URL of the checkout, which would make the digest depend
// on the folder the sources are in. Its line in RECORD goes too.
func dropDirectURLs(target string) error {
	files, err := filepath.Glob(filepath.Join(target, "*.dist-info", "direct_url.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
		info := filepath.Dir(f)
		record := filepath.Join(info, "RECORD")
		data, err := os.ReadFile(record)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		entry := filepath.Base(info) + "/direct_url.json,"
		var keep []string
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if !strings.HasPrefix(line, entry) {
				keep = append(keep, line)
			}
		}
		if err := os.WriteFile(record, []byte(strings.Join(keep, "")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hasRequirements reports whether a requirements file lists anything.
func hasRequirements(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// pythonPackages lists the distributions pip installed, from their
// *.dist-info/METADATA.
func pythonPackages(dir string) []Package {
	metas, _ := filepath.Glob(filepath.Join(dir, "*.dist-info", "METADATA"))
	var pkgs []Package
	for _, m := range metas {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var n, v string
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" {
				break
			}
			if s, ok := strings.CutPrefix(line, "Name: "); ok {
				n = strings.TrimSpace(s)
			}
			if s, ok := strings.CutPrefix(line, "Version: "); ok {
				v = strings.TrimSpace(s)
			}
		}
		if n != "" {
			pkgs = append(pkgs, Package{Name: n, Version: v, PURL: "pkg:pypi/" + strings.ToLower(n) + "@" + v})
		}
	}
	return pkgs
}
