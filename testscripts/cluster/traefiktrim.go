package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Traefik links lego (its ACME client) and lego links every DNS-01
// provider it knows, each with its cloud's SDK: about 340 of the 2,500
// packages of cmd/traefik. The test cluster's Traefik never solves an ACME
// challenge itself (cert-manager does), so it is built as KEDA is: a copy of
// lego's module, from the module cache, whose provider registry
// (providers/dns/zz_gen_dns_providers.go, NewDNSChallengeProviderByName)
// keeps the providers of traefikDNSProviders only; a go.mod beside
// tools/traefik's replaces lego with the copy. Any other provider name gets
// lego's own "unrecognized DNS provider".

// legoModule is the module tools/traefik's go.mod pins for Traefik's ACME.
const legoModule = "github.com/go-acme/lego/v4"

// traefikDNSProviders are the DNS-01 providers the test cluster's Traefik
// keeps: the two without an SDK.
var traefikDNSProviders = []string{"exec", "manual"}

// legoRegistry is the file of lego's module that names every provider.
var legoRegistry = filepath.Join("providers", "dns", "zz_gen_dns_providers.go")

// traefikTrimKey names what the trimmed build keeps, for its cache dir.
func traefikTrimKey() string {
	sum := sha256.Sum256([]byte(strings.Join(traefikDNSProviders, ",")))
	return "trimmed-" + hex.EncodeToString(sum[:4])
}

// prepareTraefik makes the trimmed copy of lego under scratch and a go.mod
// (with its go.sum) that replaces lego by it, and returns the go build
// flag that uses that go.mod.
func (c *cluster) prepareTraefik(ctx context.Context, scratch string) ([]string, error) {
	return c.prepareTrimmed(ctx, scratch, "traefik", legoModule, "lego", trimLego)
}

// prepareTrimmed makes, with trim, a trimmed copy of module (as the go.mod
// of tools/<tools> pins it) in scratch/<name>, and a go.mod (with its
// go.sum) that replaces module by it, and returns the go build flag that
// uses that go.mod.
func (c *cluster) prepareTrimmed(ctx context.Context, scratch, tools, module, name string, trim func(modDir, dst string) error) ([]string, error) {
	modDir, err := c.moduleDir(ctx, "tools/"+tools, module)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(scratch, name)
	if err := trim(modDir, dst); err != nil {
		return nil, err
	}
	return replaceWithCopy(filepath.Join(c.cfg.SrcDir, "tools", tools), scratch, module, dst)
}

// trimLego copies lego's module from modDir into dst with the provider
// registry cut down to traefikDNSProviders (the other providers' packages
// are copied but no longer imported, so never compiled).
func trimLego(modDir, dst string) error {
	if err := copyModule(modDir, dst, func(rel string) bool { return rel == legoRegistry }); err != nil {
		return err
	}
	src, err := trimSwitch(filepath.Join(modDir, legoRegistry), "NewDNSChallengeProviderByName", traefikDNSProviders,
		"lego changed its provider registry; update traefiktrim.go", "lego changed its provider names; update traefikDNSProviders")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, legoRegistry), src, 0o644)
}

// copyModule copies the module in modDir into dst: every folder, and every
// regular file except the tests and those for which leave (given the path
// relative to modDir) is true, which the trim writes itself or leaves out.
func copyModule(modDir, dst string, leave func(rel string) bool) error {
	return filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(modDir, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case !d.Type().IsRegular(), strings.HasSuffix(rel, "_test.go"), leave(rel):
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
}

// replaceWithCopy writes into scratch a copy of the tools module's go.mod
// that replaces module with dir, and its go.sum; it returns the go build
// flag that uses it.
func replaceWithCopy(tools, scratch, module, dir string) ([]string, error) {
	gomod, err := os.ReadFile(filepath.Join(tools, "go.mod"))
	if err != nil {
		return nil, err
	}
	gosum, err := os.ReadFile(filepath.Join(tools, "go.sum"))
	if err != nil {
		return nil, err
	}
	gomod = fmt.Appendf(gomod, "\nreplace %s => %s\n", module, dir)
	modfile := filepath.Join(scratch, "go.mod")
	if err := os.WriteFile(modfile, gomod, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(scratch, "go.sum"), gosum, 0o644); err != nil {
		return nil, err
	}
	return []string{"-modfile", modfile}, nil
}
