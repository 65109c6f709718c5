// Package probe holds the checks of `skiff doctor` that ask something
// outside this machine: the registry (a push started and cancelled, an
// anonymous pull), the cluster (reach, access reviews for what the
// project's rendered chart holds, Pod Security, NetworkPolicy enforcement,
// the nodes' architectures, the serverless engines) and the event bus. Package doctor holds the
// rest (results, the toolchains, running checks at once) and imports no
// cluster, bus or registry package; main hands these to the command
// through cmdutil.Factory.
package probe

import (
	"context"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/publish/registry"
)

// Checks are the registry's and the cluster's checks of cfg's project.
func Checks(ctx context.Context, cfg doctor.Config) []doctor.Check {
	needs, err := Needs(ctx, cfg)
	checks := append(RegistryChecks(cfg.Project, cfg.Insecure), ClusterChecks(cfg.Project, cfg.Kubeconfig, cfg.KubeContext, needs, err)...)
	if ev := cfg.Project.Events; ev != nil && ev.Bus != "" {
		checks = append(checks, BusChecks(cfg.Project, ev.BusFiles(cfg.Root, os.Getenv), cfg.Kubeconfig, cfg.KubeContext)...)
	}
	return checks
}

// RegistryChecks check the push to and the pulls from the project's
// registry, parsed once.
func RegistryChecks(p *project.Project, insecure []string) []doctor.Check {
	if p.Registry == "" {
		return []doctor.Check{{Name: "registry", Run: func(context.Context) doctor.Result {
			return doctor.Warns("skiff.yaml names no registry: builds go to the local store, and deploy has nothing to pull",
				"add `registry: HOST/PATH` to skiff.yaml (or to the environment)")
		}}}
	}
	repo := publish.ImageName(p.Registry, p.Workloads[0].Name)
	regs, err := registry.New(registry.Options{Insecure: insecure})
	var ref name.Reference
	if err == nil {
		ref, err = regs.ParseReference(repo)
	}
	if err != nil {
		return []doctor.Check{{Name: "registry", Run: func(context.Context) doctor.Result {
			return doctor.Fails(err.Error(), "fix `registry:` in skiff.yaml")
		}}}
	}
	host := ref.Context().RegistryStr()
	return []doctor.Check{
		Registry(ref.Context(), authn.DefaultKeychain, nil, publish.CredentialSource),
		// The nodes will be able to pull the images.
		PullAccess(repo, p.RegistryAuth,
			func(ctx context.Context) (bool, error) { return regs.AnonymousPull(ctx, repo) },
			func() error { _, err := publish.DockerConfigJSON(host, authn.DefaultKeychain); return err }),
	}
}

// Needs is what deploy, status, logs and invoke do in the project's
// namespace (doctor.AccessFor), for the objects of its releases rendered
// as a deploy would render them (with a stand-in image).
func Needs(ctx context.Context, cfg doctor.Config) ([]doctor.Access, error) {
	p := cfg.Project
	images := map[string]string{}
	for _, w := range p.Workloads {
		images[w.Name] = pipeline.PullRef(p, w.Name, "sha256:"+strings.Repeat("0", 64))
	}
	rendered, err := (&pipeline.Pipeline{Project: p, Root: cfg.Root}).Render(ctx, p.Workloads, images, nil)
	var manifests []string
	for _, r := range rendered {
		manifests = append(manifests, r.YAML)
	}
	if err != nil {
		return nil, err
	}
	needs, err := doctor.AccessFor(manifests...)
	if err != nil {
		return nil, err
	}
	return append(needs, listenerAccess(p)...), nil
}

// listenerAccess: with gateway.addListeners, deploy reads and patches the
// Gateway, in its own namespace.
func listenerAccess(p *project.Project) []doctor.Access {
	var out []doctor.Access
	seen := map[project.Gateway]bool{}
	for i := range p.Workloads {
		x := p.Exposure(&p.Workloads[i])
		if x == nil || x.AddedListener(p.Workloads[i].Name, p.Namespace) == "" || seen[*x.Gateway] {
			continue
		}
		seen[*x.Gateway] = true
		for _, v := range []string{"get", "patch"} {
			out = append(out, doctor.Access{Group: "gateway.networking.k8s.io", Resource: "gateways", Verb: v, Namespaced: true, Namespace: x.Gateway.Namespace})
		}
	}
	return out
}
