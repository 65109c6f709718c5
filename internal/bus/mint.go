package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/skiffdev/skiff/internal/kube"
)

// ReadSigningKey reads the seed of an account signing key (SA...) from
// file, for minting users; the error names the file, never its content.
func ReadSigningKey(file string) (nkeys.KeyPair, error) {
	const fix = "point events.signingKey in skiff.yaml (or $SKIFF_NATS_SIGNING_KEY) at a file holding the seed of a signing key of the bus's account (nsc edit account --sk generate; the seed starts with SA)"
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("the account signing key %s cannot be read: %s; %s", file, strings.TrimPrefix(err.Error(), "open "+file+": "), fix)
	}
	seed := []byte(strings.TrimSpace(string(data)))
	if kp, err := jwt.ParseDecoratedNKey(data); err == nil {
		if s, err := kp.Seed(); err == nil {
			seed = s
		}
	}
	prefix, _, err := nkeys.DecodeSeed(seed)
	if err != nil || prefix != nkeys.PrefixByteAccount {
		return nil, fmt.Errorf("the account signing key %s holds no account seed; %s", file, fix)
	}
	return nkeys.FromSeed(seed)
}

// DefaultUserTTL is how long a minted user is accepted: deploy mints a
// new one when less than half of it is left.
const DefaultUserTTL = 90 * 24 * time.Hour

// Minter mints the users of one account, signed by one of its signing
// keys.
type Minter struct {
	// Key is an account signing key; Account is the account's public key
	// (A...), which the user names as its issuer account.
	Key     nkeys.KeyPair
	Account string
	// TTL is how long a user is accepted (0: DefaultUserTTL).
	TTL time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (m *Minter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Minter) ttl() time.Duration {
	if m.TTL > 0 {
		return m.TTL
	}
	return DefaultUserTTL
}

// Mint returns a .creds file of a new user named name that may publish
// to pub and subscribe to sub, nothing else.
func (m *Minter) Mint(name string, pub, sub []string) ([]byte, error) {
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	defer ukp.Wipe()
	upub, err := ukp.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(upub)
	uc.Name = name
	uc.IssuerAccount = m.Account
	uc.Expires = m.now().Add(m.ttl()).Unix()
	uc.Pub.Allow.Add(pub...)
	uc.Sub.Allow.Add(sub...)
	tok, err := uc.Encode(m.Key)
	if err != nil {
		return nil, fmt.Errorf("minting the bus user %s: %w", name, err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		return nil, err
	}
	return jwt.FormatUserConfig(tok, seed)
}

// Current says whether creds (a user Mint made earlier) may be kept: a
// user of m's account signed by m's key, with rights r exactly, and more
// than half its TTL left, allowed exactly pub and sub. A user kept keeps
// the workload's Secret as it is.
func (m *Minter) Current(creds []byte, pub, sub []string) bool {
	tok, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return false
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return false
	}
	signer, err := m.Key.PublicKey()
	if err != nil || uc.Issuer != signer || uc.IssuerAccount != m.Account || uc.Expires == 0 {
		return false
	}
	if time.Unix(uc.Expires, 0).Sub(m.now()) < m.ttl()/2 {
		return false
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		return false
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || pub != uc.Subject {
		return false
	}
	return len(uc.Pub.Deny) == 0 && len(uc.Sub.Deny) == 0 && sameSet(uc.Pub.Allow, pub) && sameSet(uc.Sub.Allow, sub)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// errRefusedProbe says the bus refused the user Check minted.
var errRefusedProbe = errors.New("refused")

// Check proves, before anything is deployed, that users m mints are
// taken by the bus at busURL: it mints one that may publish and subscribe
// to nothing and lives a minute, and connects with it (through kc for a
// Service of the cluster, trusting ca). A refusal means the signing key is
// not one of the account's, or the account not the bus's: the error says
// so, naming keyFile.
func (m *Minter) Check(ctx context.Context, kc *kube.Client, busURL, ca, keyFile string) error {
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	defer ukp.Wipe()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Name = "skiff probe"
	uc.IssuerAccount = m.Account
	uc.Expires = m.now().Add(time.Minute).Unix()
	uc.Pub.Deny.Add(">")
	uc.Sub.Deny.Add(">")
	tok, err := uc.Encode(m.Key)
	if err != nil {
		return fmt.Errorf("the account signing key %s cannot sign: %w", keyFile, err)
	}
	seed, _ := ukp.Seed()
	conn, err := (&Dialer{Auth: Auth{CA: ca, jwt: tok, seed: string(seed)}}).Dial(ctx, kc, busURL)
	if errors.Is(err, errRefusedProbe) {
		return fmt.Errorf("the bus %s refused a user signed by the account signing key %s for account %s: the key is not one of that account's signing keys, or the bus does not trust the account; "+
			"point events.signingKey (or $SKIFF_NATS_SIGNING_KEY) at a signing key of the account of events.credentials's user (docs/security.md)", busURL, keyFile, m.Account)
	}
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}
