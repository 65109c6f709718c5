package cli

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/sign"
)

// PasswordEnv holds the password of the signing key.
const PasswordEnv = "SKIFF_SIGNING_PASSWORD"

// NewCmdKeys builds `skiff keys`.
func NewCmdKeys(f *cmdutil.Factory, runF func(*KeysGenerateOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys <command>",
		GroupID: "ship",
		Short:   "Create the key pair images are signed with",
		Long: heredoc.Doc(`
			Signing keys for skiff's image signatures and attestations. The pair is
			cosign's format: cosign signs and verifies with it, and skiff verifies
			what cosign signs with it. See docs/supply-chain.md.
		`),
	}
	cmd.AddCommand(newCmdKeysGenerate(f, runF))
	return cmd
}

// KeysGenerateOptions are the inputs of `skiff keys generate`.
type KeysGenerateOptions struct {
	Factory *cmdutil.Factory
	// Prefix is the path of the pair without its extension.
	Prefix string
	Force  bool
}

func newCmdKeysGenerate(f *cmdutil.Factory, runF func(*KeysGenerateOptions) error) *cobra.Command {
	opts := &KeysGenerateOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a new signing key pair (PREFIX.key, encrypted, and PREFIX.pub)",
		Long: heredoc.Docf(`
			Write a new ECDSA P-256 key pair: PREFIX.key, the private key encrypted
			with a password (scrypt and nacl/secretbox, as cosign stores keys; mode
			0600), and PREFIX.pub, the public key to verify with. The private key is
			never printed nor written unencrypted.

			The password is read from $%[1]s, else asked for on a terminal
			(twice). An existing key file is never overwritten without --force.

			Sign with the private key by naming it in skiff.yaml (signing: {key:
			skiff.key}) or, in CI, by putting its PEM in a secret variable and
			naming that (signing: {key: env://SKIFF_SIGNING_KEY}); verify with
			verify: {key: skiff.pub}. Commit the .pub; never commit the .key.
		`, PasswordEnv),
		Example: heredoc.Doc(`
			skiff keys generate
			SKIFF_SIGNING_PASSWORD=... skiff keys generate --output-key-prefix keys/prod
		`),
		Args: exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Prefix == "" {
				return cmdutil.Usagef("--output-key-prefix is empty; give a path such as keys/prod")
			}
			if runF != nil {
				return runF(opts)
			}
			return keysGenerateRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Prefix, "output-key-prefix", "skiff", "path of the pair without extension: writes PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite existing key files")
	return cmd
}

// KeyFiles is what `skiff keys generate` wrote.
type KeyFiles struct {
	PrivateKey  string `json:"privateKey"`
	PublicKey   string `json:"publicKey"`
	Fingerprint string `json:"fingerprint"`
}

func keysGenerateRun(opts *KeysGenerateOptions) error {
	f := opts.Factory
	wd, err := f.WorkDir()
	if err != nil {
		return err
	}
	prefix := opts.Prefix
	if !filepath.IsAbs(prefix) {
		prefix = filepath.Join(wd, prefix)
	}
	privPath, pubPath := prefix+".key", prefix+".pub"
	if !opts.Force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists; use --force to replace the key pair (what it signed will no longer verify with the new key), or --output-key-prefix for another name", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	pw, err := newKeyPassword(f)
	if err != nil {
		return err
	}
	kp, err := sign.Generate(pw)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return err
	}
	// Each file is written whole beside its place, then moved there: a
	// failure leaves no half-written key.
	if err := writeFileAtomic(privPath, kp.Private, 0o600, opts.Force); err != nil {
		return fmt.Errorf("writing the private key: %w", err)
	}
	if err := writeFileAtomic(pubPath, kp.Public, 0o644, opts.Force); err != nil {
		os.Remove(privPath) // the pair is written whole or not at all
		return fmt.Errorf("writing the public key: %w", err)
	}
	pub, err := sign.ParsePublicKey(kp.Public)
	if err != nil {
		return err
	}
	out := KeyFiles{PrivateKey: privPath, PublicKey: pubPath, Fingerprint: sign.Fingerprint(pub)}
	ios := f.IOStreams
	return cmdutil.Write(ios.Out, f.Globals.Output, out, func(w io.Writer) error {
		fmt.Fprintf(ios.ErrOut, "%s Wrote %s (private, encrypted: keep it secret) and %s (public: commit it)\n",
			ios.ColorScheme().SuccessIcon(), relTo(wd, privPath), relTo(wd, pubPath))
		_, err := fmt.Fprintf(w, "%s\n", out.Fingerprint)
		return err
	})
}

func relTo(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(r) {
		return r
	}
	return path
}

// newKeyPassword is the password of a new private key: $SKIFF_SIGNING_PASSWORD,
// else asked twice on a terminal.
func newKeyPassword(f *cmdutil.Factory) ([]byte, error) {
	if pw := f.Getenv(PasswordEnv); pw != "" {
		return []byte(pw), nil
	}
	ios := f.IOStreams
	if !ios.CanPrompt() || f.Globals.NonInteractive {
		return nil, cmdutil.Usagef("no password for the private key: set %s (there is no terminal to ask on)", PasswordEnv)
	}
	p, err := f.Prompter()
	if err != nil {
		return nil, err
	}
	pw, err := p.Password("Password for the private key")
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, cmdutil.Usagef("the password is empty; a private key is always encrypted")
	}
	again, err := p.Password("The same password again")
	if err != nil {
		return nil, err
	}
	if again != pw {
		return nil, cmdutil.Usagef("the two passwords differ; run skiff keys generate again")
	}
	return []byte(pw), nil
}

// keyPassword is the password of an existing private key: $SKIFF_SIGNING_PASSWORD,
// else asked on a terminal.
func keyPassword(f *cmdutil.Factory, keyRef string) ([]byte, error) {
	if pw := f.Getenv(PasswordEnv); pw != "" {
		return []byte(pw), nil
	}
	ios := f.IOStreams
	if !ios.CanPrompt() || f.Globals.NonInteractive {
		return nil, cmdutil.Usagef("no password for the signing key %s: set %s (there is no terminal to ask on)", keyRef, PasswordEnv)
	}
	p, err := f.Prompter()
	if err != nil {
		return nil, err
	}
	pw, err := p.Password("Password for the signing key " + keyRef)
	if err != nil {
		return nil, err
	}
	return []byte(pw), nil
}

// writeFileAtomic writes data to a new file beside path, then moves it to
// path: over an existing file only with replace.
func writeFileAtomic(path string, data []byte, mode os.FileMode, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		return os.Rename(tmp.Name(), path)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared meanwhile; nothing replaced", path)
		}
		return err
	}
	return nil
}

// readKeyRef reads the key flag names (relative to the working folder),
// else the one skiff.yaml names, projectRef (relative to the project's
// root), and returns the reference it read with the key's bytes.
func readKeyRef(f *cmdutil.Factory, flag, projectRef, root string) (string, []byte, error) {
	ref, dir := flag, root
	if ref == "" {
		ref = projectRef
	} else {
		wd, err := f.WorkDir()
		if err != nil {
			return "", nil, err
		}
		dir = wd
	}
	data, err := sign.ReadKeyRef(ref, dir, f.Getenv)
	if err != nil {
		return "", nil, err
	}
	return ref, data, nil
}

// signingKey reads and decrypts the private key to sign with: flag
// (relative to the working folder), else signing.key of the project
// (relative to it).
func signingKey(f *cmdutil.Factory, flag string, pc *projectContext) (*ecdsa.PrivateKey, error) {
	var projectRef string
	if flag == "" {
		projectRef = pc.project.Signing.Key
	}
	ref, data, err := readKeyRef(f, flag, projectRef, pc.root)
	if err != nil {
		return nil, err
	}
	pw, err := keyPassword(f, ref)
	if err != nil {
		return nil, err
	}
	k, err := sign.ParsePrivateKey(data, pw)
	if errors.Is(err, sign.ErrWrongPassword) {
		return nil, fmt.Errorf("signing key %s: %w; check %s", ref, err, PasswordEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	return k, nil
}
