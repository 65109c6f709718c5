package cli

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/sign"
)

// VerifyOptions are the inputs of `skiff verify`.
type VerifyOptions struct {
	Factory *cmdutil.Factory
	// Args are workload names and image references.
	Args     []string
	Key      string
	Tag      string
	Insecure []string
}

// NewCmdVerify builds `skiff verify`.
func NewCmdVerify(f *cmdutil.Factory, runF func(*VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "verify [WORKLOAD|IMAGE...]",
		GroupID: "ship",
		Short:   "Check images' signatures, SBOM and provenance against a public key",
		Long: heredoc.Doc(`
			Check that each image is signed by the key and has SLSA provenance
			attested by it, and print what was verified: the signer (the key's
			fingerprint), the git commit the provenance records, and how many
			packages the attested SBOM lists.

			Arguments are workloads of the project (their image in the project's
			registry under --tag) or image references (REPO:TAG or REPO@DIGEST);
			none: every workload. The key is --key, else verify.key in skiff.yaml
			(a file or env://NAME). An image that does not verify is named with
			the reason, and skiff exits with 1.

			What skiff verifies, cosign verifies too: see docs/supply-chain.md.
		`),
		Example: heredoc.Doc(`
			skiff verify
			skiff verify orders --key skiff.pub
			skiff verify registry.example.com/team/orders@sha256:... --key skiff.pub
		`),
		ValidArgsFunction: workloadCompletion(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			if opts.Tag == "" || strings.ContainsAny(opts.Tag, ":/@ ") {
				return cmdutil.Usagef("--tag %q is not a valid tag", opts.Tag)
			}
			if runF != nil {
				return runF(opts)
			}
			return verifyRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Key, "key", "", "public key to verify with: a file or env://NAME (default: verify.key of skiff.yaml)")
	fl.StringVar(&opts.Tag, "tag", "latest", "tag of the workloads' images")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
	return cmd
}

// isImageRef tells an image reference from a workload name (a DNS label
// has no '/', ':' or '@').
func isImageRef(s string) bool { return strings.ContainsAny(s, "/:@") }

// verifyTarget is one thing to verify.
type verifyTarget struct {
	workload string // "" for an image given as such
	ref      string
}

func verifyRun(ctx context.Context, opts *VerifyOptions) error {
	f := opts.Factory
	var names, refs []string
	for _, a := range opts.Args {
		if isImageRef(a) {
			refs = append(refs, a)
		} else {
			names = append(names, a)
		}
	}
	var pc *projectContext
	if len(names) > 0 || len(refs) == 0 || opts.Key == "" {
		var err error
		pc, err = loadProjectContext(f, names)
		if err != nil {
			if len(names) == 0 && len(refs) > 0 && errors.Is(err, project.ErrNotFound) {
				return cmdutil.Usagef("no key to verify with: pass --key FILE (outside a project there is no verify: to read)")
			}
			return err
		}
	}
	var targets []verifyTarget
	if len(names) > 0 || len(refs) == 0 {
		if pc.project.Registry == "" {
			return cmdutil.Manifestf("skiff.yaml names no registry%s, so its workloads have no pushed images to verify; add `registry: HOST/PATH`, or give image references",
				envSuffix(pc.project))
		}
		for _, w := range pc.workloads {
			targets = append(targets, verifyTarget{workload: w.Name, ref: publish.ImageName(pc.project.Registry, w.Name) + ":" + opts.Tag})
		}
	}
	for _, r := range refs {
		targets = append(targets, verifyTarget{ref: r})
	}
	key, err := verifyKey(f, opts.Key, pc)
	if err != nil {
		return err
	}
	iv, err := newImageVerifier(f, key, opts.Insecure)
	if err != nil {
		return err
	}
	ios := f.IOStreams
	ok := []*sign.Verified{}
	failed := 0
	for _, t := range targets {
		v, err := iv.Verify(ctx, t.ref)
		var verr *sign.VerifyError
		switch {
		case errors.As(err, &verr):
			failed++
			fmt.Fprintf(ios.ErrOut, "%s %v\n", ios.ColorScheme().FailureIcon(), err)
			continue
		case err != nil:
			return err
		}
		v.Workload = orDefault(t.workload, v.Workload)
		ok = append(ok, v)
	}
	if err := cmdutil.Write(ios.Out, f.Globals.Output, ok, func(w io.Writer) error {
		fmt.Fprintln(w, "IMAGE\tDIGEST\tSIGNER\tCOMMIT\tSBOM")
		for _, v := range ok {
			sbom := "-"
			if v.SBOM {
				sbom = fmt.Sprintf("%d packages", v.Packages)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", v.Image, short(v.Digest, 19), short(v.Signer, 23), orDefault(short(v.Commit, 12), "-"), sbom)
		}
		return nil
	}); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images do not verify with key %s", failed, len(targets), sign.Fingerprint(key))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// verifyKey reads the public key to verify with: flag (relative to the
// working folder), else verify.key of the project (relative to it).
func verifyKey(f *cmdutil.Factory, flag string, pc *projectContext) (*ecdsa.PublicKey, error) {
	var projectRef, root string
	if flag == "" {
		if pc == nil || pc.project.Verify == nil {
			return nil, cmdutil.Usagef("no key to verify with: pass --key FILE, or add `verify: {key: skiff.pub}` to skiff.yaml")
		}
		projectRef, root = pc.project.Verify.Key, pc.root
	}
	ref, data, err := readKeyRef(f, flag, projectRef, root)
	if err != nil {
		return nil, err
	}
	k, err := sign.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", ref, err)
	}
	return k, nil
}

func newImageVerifier(f *cmdutil.Factory, key *ecdsa.PublicKey, insecure []string) (engine.Verifier, error) {
	return f.Verifier(engine.VerifyConfig{Key: key, Insecure: insecure, UserAgent: "skiff/" + f.BuildInfo.Version,
		Events: newProgress(f).event})
}

// verifyDeployed refuses, before deploy changes anything, an image that
// does not verify with the key of verify: (nothing to do without one).
func verifyDeployed(ctx context.Context, f *cmdutil.Factory, pc *projectContext, images map[string]string, insecure []string) error {
	if pc.project.Verify == nil {
		return nil
	}
	key, err := verifyKey(f, "", pc)
	if err != nil {
		return err
	}
	iv, err := newImageVerifier(f, key, insecure)
	if err != nil {
		return err
	}
	err = iv.Gate(ctx, pc.workloads, images)
	var un *engine.UnverifiedError
	if errors.As(err, &un) {
		return fmt.Errorf("refusing to deploy %s, nothing changed: %w; sign it (signing: in skiff.yaml, or --sign-key) or deploy a signed image", un.Workload, un.Err)
	}
	return err
}

// devKey is the key dev checks its images with: verify.key of the
// project (nil without verify:); dev warns about an image that does not
// verify.
func devKey(f *cmdutil.Factory, pc *projectContext) (*ecdsa.PublicKey, error) {
	if pc.project.Verify == nil {
		return nil, nil
	}
	return verifyKey(f, "", pc)
}

// verifyRollback refuses, before anything changes, a rollback of w to a
// revision whose image does not verify with the key of verify:
// (revision 0: the one before the current).
func verifyRollback(ctx context.Context, f *cmdutil.Factory, pc *projectContext, s engine.Session, w string, revision int) error {
	if pc.project.Verify == nil {
		return nil
	}
	hist, err := s.History(ctx, w)
	if err != nil {
		return err
	}
	image, found := "", false
	switch {
	case revision == 0 && len(hist) >= 2:
		image, revision, found = hist[len(hist)-2].Image, hist[len(hist)-2].Revision, true
	case revision > 0:
		for _, r := range hist {
			if r.Revision == revision {
				image, found = r.Image, true
			}
		}
	}
	if !found {
		return nil // Helm says there is no such revision
	}
	if image == "" {
		return fmt.Errorf("refusing to roll %s back to revision %d, nothing changed: its image is not recorded, so it cannot be verified against verify: in skiff.yaml", w, revision)
	}
	key, err := verifyKey(f, "", pc)
	if err != nil {
		return err
	}
	iv, err := newImageVerifier(f, key, nil)
	if err != nil {
		return err
	}
	err = iv.Gate(ctx, pc.workloads, map[string]string{w: image})
	var un *engine.UnverifiedError
	if errors.As(err, &un) {
		return fmt.Errorf("refusing to roll %s back to revision %d, nothing changed: %w", w, revision, un.Err)
	}
	return err
}
