package bus

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Auth is how skiff proves itself to a bus and trusts it: a .creds file
// (a user JWT and its nkey seed, as nsc and the nats CLI write them) and
// the CA of a tls:// bus. The zero Auth connects without credentials and
// trusts the system's roots. Neither file's content is ever printed.
type Auth struct {
	// Creds is the .creds file ("": none).
	Creds string
	// CA is a PEM file of the CA certificates the bus's certificate is
	// checked against ("": the system's).
	CA string

	// jwt and seed are a user held in memory (Minter.Check's probe).
	jwt, seed string
}

// Open says whether a connection with a is one without credentials.
func (a Auth) Open() bool { return a.Creds == "" && a.jwt == "" }

// options are nats.go's options for a.
func (a Auth) options() []nats.Option {
	var opts []nats.Option
	if a.Creds != "" {
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.jwt != "" {
		opts = append(opts, nats.UserJWTAndSeed(a.jwt, a.seed))
	}
	if a.CA != "" {
		opts = append(opts, nats.RootCAs(a.CA))
	}
	return opts
}

// User is what a .creds file holds, without its secrets.
type User struct {
	// Name and PublicKey are the user's (U...).
	Name, PublicKey string
	// Account is the account the user belongs to (A...): the issuer, or
	// the account a signing key signed for.
	Account string
	// Expires is when the JWT stops being accepted (zero: never).
	Expires time.Time
	// Claims are the decoded user claims (permissions, limits).
	Claims *jwt.UserClaims
}

// CredsError says a .creds file cannot be used, naming the file and what to
// do; it never holds the file's content.
type CredsError struct {
	File string
	Why  string
	Fix  string
}

func (e *CredsError) Error() string {
	return fmt.Sprintf("the bus credentials %s %s; %s", e.File, e.Why, e.Fix)
}

const credsFix = "point events.credentials in skiff.yaml (or $SKIFF_NATS_CREDS) at a .creds file of a user of the bus's account (nsc generate creds, or your operator)"

// ReadCreds reads and checks a .creds file at now: a user JWT that decodes
// and has not expired, and a user seed that matches it.
func ReadCreds(file string, now time.Time) (*User, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		why := "cannot be read: " + strings.TrimPrefix(err.Error(), "open "+file+": ")
		return nil, &CredsError{File: file, Why: why, Fix: credsFix}
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return nil, &CredsError{File: file, Why: "holds no NATS user JWT", Fix: credsFix}
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return nil, &CredsError{File: file, Why: "holds no NATS user JWT", Fix: credsFix}
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		return nil, &CredsError{File: file, Why: "holds no user nkey seed", Fix: credsFix}
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || pub != uc.Subject {
		return nil, &CredsError{File: file, Why: "holds a seed that is not its JWT's user's", Fix: credsFix}
	}
	u := &User{Name: uc.Name, PublicKey: uc.Subject, Account: uc.Issuer, Claims: uc}
	if uc.IssuerAccount != "" {
		u.Account = uc.IssuerAccount
	}
	if uc.Expires > 0 {
		u.Expires = time.Unix(uc.Expires, 0)
		if !now.Before(u.Expires) {
			return nil, &CredsError{File: file, Why: fmt.Sprintf("expired at %s (user %s)", u.Expires.UTC().Format(time.RFC3339), uc.Subject),
				Fix: "get a new .creds file for it (nsc generate creds, or your operator) and point events.credentials (or $SKIFF_NATS_CREDS) at it"}
		}
	}
	return u, nil
}

// CheckCA says why file is not a PEM file of CA certificates.
func CheckCA(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("the bus's CA %s cannot be read: %w; fix events.tls.ca in skiff.yaml", file, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("the bus's CA %s holds no PEM certificate; fix events.tls.ca in skiff.yaml", file)
	}
	return nil
}

// check reads a's files before a connection, so a bad one is named.
func (a Auth) check(now time.Time) error {
	if a.Creds != "" {
		if _, err := ReadCreds(a.Creds, now); err != nil {
			return err
		}
	}
	if a.CA != "" {
		return CheckCA(a.CA)
	}
	return nil
}

// authErr says why the bus refused a's credentials, or returns nil when
// err is no refusal.
func (a Auth) authErr(busURL string, err error) error {
	var why string
	switch {
	case errors.Is(err, nats.ErrAuthExpired):
		why = "as expired"
	case errors.Is(err, nats.ErrAuthRevoked):
		why = "as revoked"
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(err.Error(), "Authorization Violation"):
		why = ""
	default:
		return nil
	}
	if a.jwt != "" {
		return errRefusedProbe
	}
	if a.Creds == "" {
		return &NeedsCredentialsError{URL: busURL}
	}
	return &CredsError{File: a.Creds, Why: strings.TrimSpace("were refused by the bus " + busURL + " " + why),
		Fix: "check that the user belongs to an account the bus trusts and was not revoked; " + credsFix}
}

// NeedsCredentialsError says a bus refused a client without credentials.
type NeedsCredentialsError struct{ URL string }

func (e *NeedsCredentialsError) Error() string {
	return fmt.Sprintf("the bus %s asks for credentials: set events.credentials in skiff.yaml (or $SKIFF_NATS_CREDS) to a .creds file of a user of its account", e.URL)
}
