package pipeline

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish/registry"
	"github.com/skiffdev/skiff/internal/sign"
)

// randomBuilder builds a new random image with a two-package SBOM.
type randomBuilder struct{}

func (randomBuilder) Build(_ context.Context, req build.Request) (*build.Artifact, error) {
	img, err := random.Image(64, 1)
	if err != nil {
		return nil, err
	}
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}, Key: strings.Repeat("cd", 32),
		SBOM: []byte(`{"spdxVersion":"SPDX-2.3","packages":[{"name":"a"},{"name":"b"}]}`)}, nil
}

func signProject(t *testing.T, host string) *project.Project {
	t.Helper()
	p, err := project.Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: shop\nregistry: " + host + "/acme\nworkloads:\n  - {name: a, kind: service, lang: go}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignAtPushThenVerifyBeforeDeploy(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sign.Generate([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := sign.ParsePrivateKey(kp.Private, []byte("pw"))
	pub, _ := sign.ParsePublicKey(kp.Public)

	p := signProject(t, host)
	var evs events
	pl := &Pipeline{Project: p, Root: t.TempDir(), Events: evs.add}
	iv := NewImageVerifier(pub, regs, evs.add)
	builds := Builds{Builder: randomBuilder{}, Publisher: &registry.Publisher{Prefix: p.Registry, Client: regs},
		Dest: DestRegistry, Tag: "latest", SBOM: true, Jobs: 1}

	// Unsigned, with dev's check: a warning, and the deploy gate refuses it.
	builds.Check = iv
	imgs, err := pl.Build(ctx, builds, p.Workloads)
	if err != nil {
		t.Fatal(err)
	}
	if got := evs.of("a"); got != "build-started built published notice" {
		t.Fatalf("events %q, want the dev warning after the push", got)
	}
	if msg := evs.all[len(evs.all)-1].Message; !strings.Contains(msg, "does not verify: not signed") || !strings.Contains(msg, "deploy would refuse it") {
		t.Errorf("warning %q", msg)
	}
	err = iv.Gate(ctx, p.Workloads, map[string]string{"a": imgs[0].Pull})
	var un *engine.UnverifiedError
	var verr *sign.VerifyError
	if !errors.As(err, &un) || un.Workload != "a" || !errors.As(err, &verr) || verr.Image != imgs[0].Pull {
		t.Fatalf("gate on an unsigned image: %v", err)
	}

	// Signed at push: a signed event, no warning, and the gate lets it through.
	evs = events{}
	builds.Sign = NewSigning(priv, regs, "1.2.3")
	imgs, err = pl.Build(ctx, builds, p.Workloads)
	if err != nil {
		t.Fatal(err)
	}
	if got := evs.of("a"); got != "build-started built published signed" {
		t.Fatalf("events %q", got)
	}
	signed := evs.all[len(evs.all)-1]
	if !signed.Uploaded || signed.Digest != imgs[0].Digest || !strings.Contains(signed.Message, "1 manifest signed with key "+sign.Fingerprint(pub)+", SPDX SBOM and SLSA provenance attested") {
		t.Errorf("signed event %+v", signed)
	}
	evs = events{}
	if err := iv.Gate(ctx, p.Workloads, map[string]string{"a": imgs[0].Pull}); err != nil {
		t.Fatal(err)
	}
	if len(evs.all) != 1 || evs.all[0].Kind != Verified || !strings.Contains(evs.all[0].Message, "SBOM of 2 packages") {
		t.Fatalf("verified events %+v", evs.all)
	}
}
