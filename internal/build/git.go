package build

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// OCI annotation keys skiff sets as image labels.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelCreated  = "org.opencontainers.image.created"
)

// Provenance is what skiff records about where an image's sources came
// from.
type Provenance struct {
	// Epoch is the time stamped on the image.
	Epoch time.Time
	// Labels are the OCI labels of the image.
	Labels map[string]string
}

// SourceProvenance finds the epoch and labels of the sources in dir: the
// epoch from SOURCE_DATE_EPOCH, else the time of the git commit, else the
// Unix epoch; the labels from git (remote URL, commit, exact tag) when dir
// is in a git work tree, the revision ending in "-dirty" when the work tree
// has changes or untracked files. version is used when no git tag names the commit.
func SourceProvenance(ctx context.Context, dir string, getenv func(string) string, version string) (Provenance, error) {
	p := Provenance{Epoch: time.Unix(0, 0).UTC(), Labels: map[string]string{}}
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if rev := git("rev-parse", "--verify", "-q", "HEAD"); rev != "" {
		// Changed or untracked files: the image is not HEAD's.
		if git("status", "--porcelain") != "" {
			rev += "-dirty"
		}
		p.Labels[LabelRevision] = rev
		if ct, err := strconv.ParseInt(git("log", "-1", "--format=%ct"), 10, 64); err == nil {
			p.Epoch = time.Unix(ct, 0).UTC()
		}
		if tag := git("describe", "--tags", "--exact-match", "HEAD"); tag != "" {
			version = tag
		}
		if src := git("remote", "get-url", "origin"); src != "" {
			// Never publish credentials embedded in an https URL.
			if u, err := url.Parse(src); err == nil && u.Scheme != "" && u.User != nil {
				u.User = nil
				src = u.String()
			}
			p.Labels[LabelSource] = src
		}
	}
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return p, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970; set it to e.g. $(git log -1 --format=%%ct)", s)
		}
		p.Epoch = time.Unix(sec, 0).UTC()
	}
	if version != "" {
		p.Labels[LabelVersion] = version
	}
	p.Labels[LabelCreated] = p.Epoch.Format(time.RFC3339)
	return p, nil
}
