package build

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The operating system files of the scratch base come from sources that
// are the same on every machine, so a Go workload built on scratch has the
// same digest everywhere: the CA certificates from the Mozilla bundle that
// this skiff embeds (golang.org/x/crypto/x509roots/fallback, pinned by
// skiff's go.mod), the time zone database from the Go toolchain that builds
// the workload ($GOROOT/lib/time/zoneinfo.zip, part of the toolchain
// version already in the cache key). Builder.HostCerts and HostZoneinfo
// replace them with files of this machine.

// caBundle returns the embedded CA certificates as one PEM file.
func caBundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

// zoneFile is one file of the time zone database.
type zoneFile struct {
	name string // e.g. "Europe/Paris"
	data []byte
}

// goZoneinfo reads the time zone database of the Go toolchain in env.
func goZoneinfo(ctx context.Context, env []string) (files []zoneFile, source string, err error) {
	goroot, err := run(ctx, "", env, "go", "env", "GOROOT")
	if err != nil {
		return nil, "", fmt.Errorf("finding the Go toolchain for the scratch base's time zones: %w", err)
	}
	source = filepath.Join(strings.TrimSpace(goroot), "lib", "time", "zoneinfo.zip")
	zr, err := zip.OpenReader(source)
	if err != nil {
		return nil, "", fmt.Errorf("reading the time zone database %s: %w; reinstall Go, or set build.base.go", source, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.Contains(f.Name, "..") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, "", err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, "", fmt.Errorf("reading %s from %s: %w", f.Name, source, err)
		}
		files = append(files, zoneFile{name: f.Name, data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, source, nil
}

// osFilesID identifies the default sources for the cache key: the embedded
// bundle's content and the zoneinfo.zip's.
func osFilesID(ctx context.Context, env []string) (string, error) {
	h := sha256.New()
	h.Write(caBundle())
	goroot, err := run(ctx, "", env, "go", "env", "GOROOT")
	if err != nil {
		return "", fmt.Errorf("finding the Go toolchain for the scratch base's time zones: %w", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(goroot), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		return "", fmt.Errorf("reading the Go toolchain's time zone database: %w; reinstall Go, or set build.base.go", err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
