// Package buildinfo tells which skiff this is.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker: -X github.com/skiffdev/skiff/internal/buildinfo.version=...
var (
	version = ""
	commit  = ""
	date    = ""
	// relayImage is the skiff-relay image this release pins, by digest
	// (the release pushes it before it builds skiff).
	relayImage = ""
)

// Info describes the running binary.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Date is when the commit was made (a release's build time), as the
	// table's "built".
	Date      string `json:"built"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// RelayImage is the skiff-relay image event-driven workloads run
	// next to them unless skiff.yaml's events.relayImage names another;
	// empty in a build that is not a release.
	RelayImage string `json:"relayImage,omitempty"`
}

// Get returns the version stamped by the release build, or what the Go
// toolchain recorded for a `go install` or `go build`.
func Get() Info {
	info := Info{Version: version, Commit: commit, Date: date, RelayImage: relayImage, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}
