// Command gensbom writes the SPDX 2.3 SBOM of a release artifact, for
// goreleaser's sboms step:
//
//	go run ./internal/cli/gensbom --output skiff.spdx.json dist/skiff_linux_amd64_v1/skiff
//
// The Go modules come from the binary's build info; the creation time is
// SOURCE_DATE_EPOCH when set, so the document is reproducible.
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skiffdev/skiff/internal/build"
)

func main() {
	out := flag.String("output", "", "file to write the SBOM to (default stdout)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gensbom [--output FILE] BINARY")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "gensbom:", err)
		os.Exit(1)
	}
}

func run(bin, out string) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("%s: %w (is it a Go binary?)", bin, err)
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	created := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		created = time.Unix(sec, 0)
	}
	version := info.Main.Version
	doc, err := build.SPDX(build.Subject{
		Name: "skiff/" + filepath.Base(bin), ID: "SPDXRef-Application", Version: version,
		SHA256: hex.EncodeToString(h.Sum(nil)), Purpose: "APPLICATION",
		PURL: "pkg:golang/" + info.Main.Path + "@" + version, Created: created, Tool: version,
	}, build.GoPackages(info))
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}
