package build

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// AppDir is the working folder of every image skiff builds, where the
// workload's files go.
const AppDir = "/app"

// assemble puts the language output onto the base image, once per platform,
// and returns an image (one platform) or an index (several).
func assemble(ctx context.Context, req Request, base *Base, out *langOutput) (*Artifact, error) {
	imgs := make([]v1.Image, len(req.Platforms))
	eg, ctx := errgroup.WithContext(ctx)
	for i, p := range req.Platforms {
		eg.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			img, err := platformBuild(req, base, out, p)
			imgs[i] = img
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	a := &Artifact{Base: BaseInfo{Ref: base.Ref, Digest: base.Digest.String()}}
	for _, p := range req.Platforms {
		a.Platforms = append(a.Platforms, p.String())
	}
	if len(imgs) == 1 {
		a.Image = imgs[0]
		return a, nil
	}
	mt, err := imgs[0].MediaType()
	if err != nil {
		return nil, err
	}
	idxType := types.OCIImageIndex
	if mt == types.DockerManifestSchema2 {
		idxType = types.DockerManifestList
	}
	idx := mutate.IndexMediaType(empty.Index, idxType)
	for i, img := range imgs {
		p := req.Platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	a.Index = idx
	return a, nil
}

func platformBuild(req Request, base *Base, out *langOutput, p v1.Platform) (v1.Image, error) {
	img, err := platformImage(base, p)
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading base image %s: %w", base.Ref, err)
	}
	layers := append(append([]v1.Layer(nil), out.Layers...), out.PlatformLayers[p.String()]...)
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		if mt == types.DockerManifestSchema2 {
			// Keep the base's family of media types in one manifest.
			if ml, ok := l.(*memLayer); ok {
				c := *ml
				c.mt = types.DockerLayer
				l = &c
			}
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: req.Epoch}, CreatedBy: "skiff build " + req.Workload.Name, Comment: "skiff",
		}})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of base image %s: %w", base.Ref, err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: req.Epoch}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	c := &cf.Config
	c.Entrypoint = out.Entrypoint
	c.Cmd = nil
	c.WorkingDir = AppDir
	c.User = strconv.Itoa(NonRootID)
	port := strconv.Itoa(req.Workload.Port)
	c.Env = setEnv(c.Env, append([]string{"PORT=" + port}, out.Env...))
	c.ExposedPorts = map[string]struct{}{port + "/tcp": {}}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range req.Labels {
		c.Labels[k] = v
	}
	return mutate.ConfigFile(img, cf)
}

// setEnv sets each KEY=VALUE of add in env, replacing an existing KEY.
func setEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		found := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i] = kv
				found = true
			}
		}
		if !found {
			out = append(out, kv)
		}
	}
	return out
}
