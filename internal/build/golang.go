package build

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// goBuilder cross-compiles a static binary per platform on the host.
type goBuilder struct {
	env []string
}

func (g *goBuilder) toolchain(ctx context.Context) (string, error) {
	out, err := run(ctx, "", g.env, "go", "env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64")
	if err != nil {
		return "", fmt.Errorf("finding the Go toolchain: %w; install Go and put it on PATH", err)
	}
	return out + envValues(g.env, "GOFLAGS=", "GOEXPERIMENT="), nil
}

func (g *goBuilder) inputs(ctx context.Context, req Request) ([]input, error) {
	return goInputs(ctx, req.Dir, g.env)
}

func (g *goBuilder) build(ctx context.Context, req Request, _ *sourceFilter) (*langOutput, error) {
	tmp, err := os.MkdirTemp("", "skiff-go-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := path.Join(AppDir, req.Workload.Name)
	layers := make([][]v1.Layer, len(req.Platforms))
	bins := make([]string, len(req.Platforms))
	// The first platform that fails cancels the others.
	eg, ctx := errgroup.WithContext(ctx)
	for i, p := range req.Platforms {
		eg.Go(func() error {
			file := filepath.Join(tmp, strings.ReplaceAll(p.String(), "/", "-"), req.Workload.Name)
			if err := g.compile(ctx, req, p, file); err != nil {
				return err
			}
			bins[i] = file
			lw := newLayerWriter(req.Epoch)
			lw.Dir(AppDir, 0o755, RootID, RootID)
			lw.HostFile(bin, file, 0o755)
			l, err := lw.Layer(types.OCILayer)
			if err != nil {
				return err
			}
			layers[i] = []v1.Layer{l}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	out := &langOutput{Entrypoint: []string{bin}, PlatformLayers: map[string][]v1.Layer{}}
	for i, p := range req.Platforms {
		out.PlatformLayers[p.String()] = layers[i]
	}
	if req.SBOM {
		info, err := buildinfo.ReadFile(bins[0])
		if err != nil {
			return nil, fmt.Errorf("reading the build info of %s: %w", req.Workload.Name, err)
		}
		out.Packages = GoPackages(info)
	}
	return out, nil
}

func (g *goBuilder) compile(ctx context.Context, req Request, p v1.Platform, file string) error {
	env := setEnv(g.env, []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture})
	if p.Architecture == "arm" && strings.HasPrefix(p.Variant, "v") {
		env = setEnv(env, []string{"GOARM=" + strings.TrimPrefix(p.Variant, "v")})
	}
	_, err := run(ctx, req.Dir, env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", file, ".")
	if err != nil {
		return fmt.Errorf("go build of %s for %s failed:\n%w\nfix the error above and build again", req.Workload.Name, p, err)
	}
	return nil
}

// GoPackages lists the Go modules (and the standard library) a binary was
// built from, as its build info records them.
func GoPackages(info *buildinfo.BuildInfo) []Package {
	var pkgs []Package
	add := func(path, version string) {
		if path == "" {
			return
		}
		pkgs = append(pkgs, Package{Name: path, Version: version, PURL: "pkg:golang/" + path + "@" + version})
	}
	add("stdlib", strings.TrimPrefix(info.GoVersion, "go"))
	add(info.Main.Path, info.Main.Version)
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		add(d.Path, d.Version)
	}
	return pkgs
}

// run runs a program in dir and returns its standard output; on failure
// the error holds its standard error.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if msg == "" {
			return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return "", fmt.Errorf("%s %s: %w:\n%s", name, strings.Join(args, " "), err, indent(msg))
	}
	return stdout.String(), nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
