package cigen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// DefaultReleaseURL is where skiff's releases are downloaded from: a
// release's files are under URL/vVERSION/.
const DefaultReleaseURL = "https://github.com/skiffdev/skiff/releases/download"

// Release is the skiff a pipeline installs: its version and the SHA-256
// of each Linux archive, which the pipeline checks before it unpacks.
type Release struct {
	// Version has no leading v, as in the archives' names.
	Version string
	URL     string
	// Checksums maps a Linux architecture (amd64, arm64) to the hex
	// SHA-256 of skiff_VERSION_linux_ARCH.tar.gz.
	Checksums map[string]string
}

// Archive is the name of the Linux archive of arch.
func (r Release) Archive(arch string) string {
	return fmt.Sprintf("skiff_%s_linux_%s.tar.gz", r.Version, arch)
}

// Arches lists the architectures with a checksum, sorted.
func (r Release) Arches() []string {
	var out []string
	for a := range r.Checksums {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

var releaseVersion = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$`)

// ReleaseVersion is the release version of a skiff version string
// ("v1.2.3" or "1.2.3"), or "" when it is not a release (a development
// build or a snapshot).
func ReleaseVersion(v string) string {
	m := releaseVersion.FindStringSubmatch(v)
	if m == nil || strings.Contains(m[1], "snapshot") {
		return ""
	}
	return m[1]
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FetchRelease reads the checksums.txt of release version under url.
func FetchRelease(ctx context.Context, client *http.Client, url, version string) (Release, error) {
	r := Release{Version: version, URL: strings.TrimSuffix(url, "/")}
	sums := r.URL + "/v" + version + "/checksums.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sums, nil)
	if err != nil {
		return r, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return r, fmt.Errorf("reading the checksums of skiff %s: %w", version, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("reading the checksums of skiff %s: %s answered %s", version, sums, resp.Status)
	}
	r.Checksums, err = parseChecksums(io.LimitReader(resp.Body, 1<<20), r)
	if err != nil {
		return r, fmt.Errorf("%s: %w", sums, err)
	}
	return r, nil
}

// parseChecksums reads sha256sum's format ("HEX  FILE" lines) and keeps the
// Linux archives of r.
func parseChecksums(rd io.Reader, r Release) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || !sha256Hex.MatchString(f[0]) {
			continue
		}
		for _, arch := range []string{"amd64", "arm64"} {
			if strings.TrimPrefix(f[1], "*") == r.Archive(arch) {
				out[arch] = f[0]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no checksum of %s or %s", r.Archive("amd64"), r.Archive("arm64"))
	}
	return out, nil
}

// InstallScript is the shell script that downloads the release's archive
// for the machine it runs on, checks its SHA-256 and unpacks skiff into
// dir (a shell word, expanded when the script runs). It ends with the
// folder in $dir.
func (r Release) InstallScript(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version=%s\n", r.Version)
	b.WriteString("case \"$(uname -m)\" in\n")
	for _, arch := range r.Arches() {
		machine := map[string]string{"amd64": "x86_64", "arm64": "aarch64 | arm64"}[arch]
		fmt.Fprintf(&b, "  %s) arch=%s sum=%s ;;\n", machine, arch, r.Checksums[arch])
	}
	b.WriteString("  *) echo \"skiff $version has no Linux archive for $(uname -m)\" >&2; exit 1 ;;\nesac\n")
	fmt.Fprintf(&b, "dir=%s\n", dir)
	b.WriteString("archive=\"skiff_${version}_linux_${arch}.tar.gz\"\n")
	b.WriteString("mkdir -p \"$dir\"\n")
	// A cached archive that matches is not downloaded again.
	b.WriteString("if ! echo \"$sum  $dir/$archive\" | sha256sum -c --status - 2>/dev/null; then\n")
	fmt.Fprintf(&b, "  curl -fsSL --retry 3 -o \"$dir/$archive\" \"%s/v${version}/${archive}\"\n", r.URL)
	b.WriteString("fi\n")
	b.WriteString("echo \"$sum  $dir/$archive\" | sha256sum -c -\n")
	b.WriteString("tar -xzf \"$dir/$archive\" -C \"$dir\" skiff\n")
	b.WriteString("\"$dir/skiff\" version\n")
	return b.String()
}
