package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cigen"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// NewCmdCI builds `skiff ci`.
func NewCmdCI(f *cmdutil.Factory, runF func(*CIInitOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ci <command>",
		GroupID: "ship",
		Short:   "Write the project's CI pipeline",
	}
	cmd.AddCommand(NewCmdCIInit(f, runF))
	return cmd
}

// CIInitOptions are the inputs of `skiff ci init`.
type CIInitOptions struct {
	Factory  *cmdutil.Factory
	Platform string
	Force    bool
	Branch   string
	// Version is the skiff release the pipeline installs ("": this one).
	Version    string
	ReleaseURL string
	// HTTPClient fetches the release's checksums (nil: a default client).
	HTTPClient *http.Client
}

// NewCmdCIInit builds `skiff ci init`.
func NewCmdCIInit(f *cmdutil.Factory, runF func(*CIInitOptions) error) *cobra.Command {
	opts := &CIInitOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "init github|gitlab",
		Short: "Write a GitHub Actions workflow or a GitLab CI file that tests, builds and deploys",
		Long: heredoc.Doc(`
			Write the CI pipeline of the project: .github/workflows/skiff.yml for
			github, .gitlab-ci.yml for gitlab. An existing file is only replaced with
			--force.

			On a pull or merge request it runs each workload's own tests (go vet and
			go test; npm ci and npm test; pip install and python -m unittest), then
			skiff build of every workload, which pushes nothing. On the default branch
			it runs the tests, logs in to the registry of skiff.yaml (or of --env) with
			the platform's secrets, runs skiff deploy and gates on skiff status --wait,
			never two deploys of one environment at once.

			The pipeline installs this version of skiff (or --skiff-version) from its
			release, and checks the archive against the SHA-256 that ci init reads from
			the release's checksums.txt now and writes into the file. The comments at
			the top of the file name the secrets or variables to set.
		`),
		Example: heredoc.Doc(`
			skiff ci init github
			skiff ci init gitlab --env prod
			skiff ci init github --force --branch trunk
		`),
		Args:      exactArgs(1, "the CI platform: "+strings.Join(cigen.Platforms(), " or ")),
		ValidArgs: cigen.Platforms(),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Platform = args[0]
			if !slices.Contains(cigen.Platforms(), opts.Platform) {
				return cmdutil.Usagef("unknown CI platform %q; use %s", opts.Platform, strings.Join(cigen.Platforms(), " or "))
			}
			if err := checkReleaseURL(opts.ReleaseURL); err != nil {
				return err
			}
			if opts.Version != "" && cigen.ReleaseVersion(opts.Version) == "" {
				return cmdutil.Usagef("--skiff-version %q is not a release version such as 1.4.0", opts.Version)
			}
			if runF != nil {
				return runF(opts)
			}
			return ciInitRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Force, "force", false, "replace the file if it exists")
	fl.StringVar(&opts.Branch, "branch", "", "the branch that deploys (default: origin's HEAD, else main; GitLab uses its own default branch)")
	fl.StringVar(&opts.Version, "skiff-version", "", "the skiff release the pipeline installs (default: this skiff's version)")
	fl.StringVar(&opts.ReleaseURL, "release-url", cigen.DefaultReleaseURL, "where releases are downloaded from, URL/vVERSION/FILE (a mirror)")
	return cmd
}

func checkReleaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return cmdutil.Usagef("--release-url %q is not an http(s) URL", s)
	}
	// The URL lands in a shell script between double quotes.
	if strings.ContainsAny(s, "\"$`\\ \n") {
		return cmdutil.Usagef("--release-url %q has a character a shell would read: one of \" $ ` \\ or a space", s)
	}
	return nil
}

func ciInitRun(ctx context.Context, opts *CIInitOptions) error {
	f := opts.Factory
	root, p, err := loadProject(f)
	if err != nil {
		return err
	}
	if opts.Branch == "" {
		opts.Branch = cigen.DefaultBranch(ctx, root)
	}
	plan, err := cigen.NewPlan(root, p, cigen.Options{Platform: opts.Platform, Env: p.Env, Branch: opts.Branch})
	if errors.Is(err, cigen.ErrNoRegistry) || errors.Is(err, cigen.ErrNoWorkloads) {
		return cmdutil.Manifestf("%v", err) // skiff.yaml's problem: no pointer to --help
	}
	if err != nil {
		return err
	}
	version := opts.Version
	if version == "" {
		version = f.BuildInfo.Version
		if cigen.ReleaseVersion(version) == "" {
			return cmdutil.Usagef("this skiff (%s) is not a release, so its pipeline has nothing to install; pass --skiff-version with the release to pin, e.g. --skiff-version 1.4.0", version)
		}
	}
	version = cigen.ReleaseVersion(version)
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if plan.Release, err = cigen.FetchRelease(ctx, client, opts.ReleaseURL, version); err != nil {
		return fmt.Errorf("%w\nthe pipeline pins skiff by the checksums of its release; run this where %s is reachable, or pass --release-url with a mirror", err, opts.ReleaseURL)
	}
	data, err := cigen.Render(plan)
	if err != nil {
		return err
	}
	file := cigen.File(opts.Platform)
	err = scaffold.Write(root, []scaffold.File{{Path: file, Data: data, Mode: 0o644}}, opts.Force)
	var conflict *scaffold.ConflictError
	if errors.As(err, &conflict) {
		return fmt.Errorf("%s exists; nothing was written; use --force to replace it", filepath.Join(root, filepath.FromSlash(file)))
	}
	if err != nil {
		return err
	}
	result := ciInitResult{File: filepath.Join(root, filepath.FromSlash(file)), Platform: opts.Platform, SkiffVersion: version,
		Env: p.Env, Branch: opts.Branch, Registry: plan.Registry, Secrets: ciSecrets(opts.Platform)}
	for _, w := range plan.Workloads {
		if w.Note != "" {
			result.Notes = append(result.Notes, fmt.Sprintf("%s: %s, so its job only installs and builds", w.Name, w.Note))
		}
	}
	if o := f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
		return cmdutil.Write(f.IOStreams.Out, o, result, nil)
	}
	// What was written and what to do next: messages, to stderr.
	return cmdutil.Write(f.IOStreams.ErrOut, cmdutil.FormatTable, result, func(w io.Writer) error {
		fmt.Fprintf(w, "wrote %s (skiff %s, deploys%s from %s)\n", result.File, version, plan.EnvFlag, branchName(opts.Platform, opts.Branch))
		for _, n := range result.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		fmt.Fprintf(w, "set these %s before the first deploy:\n", map[string]string{cigen.GitHub: "secrets", cigen.GitLab: "CI/CD variables"}[opts.Platform])
		for _, s := range result.Secrets {
			fmt.Fprintf(w, "  %s\n", s)
		}
		return nil
	})
}

type ciInitResult struct {
	File         string   `json:"file"`
	Platform     string   `json:"platform"`
	SkiffVersion string   `json:"skiffVersion"`
	Env          string   `json:"env,omitempty"`
	Branch       string   `json:"branch"`
	Registry     string   `json:"registry"`
	Secrets      []string `json:"secrets"`
	Notes        []string `json:"notes,omitempty"`
}

func branchName(platform, branch string) string {
	if platform == cigen.GitLab {
		return "the default branch"
	}
	return branch
}

// ciSecrets names what the deploy job reads from the platform.
func ciSecrets(platform string) []string {
	if platform == cigen.GitLab {
		return []string{"KUBECONFIG (type File)", "SKIFF_REGISTRY_USER and SKIFF_REGISTRY_PASSWORD (unless the project's own container registry: CI_REGISTRY_*)"}
	}
	return []string{"KUBECONFIG_DATA", "SKIFF_REGISTRY_USER and SKIFF_REGISTRY_PASSWORD (unless GITHUB_TOKEN may push)"}
}
