package publish

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Credentials are an account on a registry.
type Credentials struct {
	Username, Password string
}

// BadCredentialsError says a registry refused credentials.
type BadCredentialsError struct {
	Registry string
	Status   int
}

func (e *BadCredentialsError) Error() string {
	return fmt.Sprintf("%s refused the username and password (%d %s); nothing was stored", e.Registry, e.Status, http.StatusText(e.Status))
}

// Verify checks creds against registry host: its API root answers 200 with
// them (after the token exchange, for registries that use tokens). The
// password appears in no error.
func (r *Registries) Verify(ctx context.Context, host string, creds Credentials) error {
	var opts []name.Option
	if r.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("%q is not a registry host: %w", host, err)
	}
	rt := r.opts.Transport // bounded by Timeout (NewRegistries)
	auth := &authn.Basic{Username: creds.Username, Password: creds.Password}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return &BadCredentialsError{Registry: host, Status: te.StatusCode}
		}
		return reachErr(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return reachErr(host, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &BadCredentialsError{Registry: host, Status: resp.StatusCode}
	}
	return fmt.Errorf("%s answered %s to a signed-in request", host, resp.Status)
}

func reachErr(host string, err error) error {
	var silent *NoAnswerError
	if errors.As(err, &silent) {
		return silent
	}
	return fmt.Errorf("cannot reach %s: %w", host, err)
}

// dockerKey is the key docker keeps a registry's credentials under.
func dockerKey(host string) string {
	if reg, err := name.NewRegistry(host); err == nil && reg.RegistryStr() == name.DefaultRegistry {
		return "https://index.docker.io/v1/"
	}
	return host
}

// StoreCredentials saves creds for registry host where docker and skiff
// read them: the credential helper the docker config names for it (or
// for every registry), else the docker config file itself ($DOCKER_CONFIG,
// default ~/.docker/config.json), which is replaced atomically. It returns
// where they went.
func StoreCredentials(host string, creds Credentials) (string, error) {
	cf, err := config.Load(os.Getenv("DOCKER_CONFIG"))
	if err != nil {
		return "", fmt.Errorf("reading the docker config: %w", err)
	}
	key := dockerKey(host)
	store := cf.GetCredentialsStore(key)
	if err := store.Store(types.AuthConfig{ServerAddress: key, Username: creds.Username, Password: creds.Password}); err != nil {
		return "", fmt.Errorf("storing the credentials for %s: %w", host, err)
	}
	return credentialsPlace(cf.Filename, cf.CredentialHelpers[key], cf.CredentialsStore), nil
}

// EraseCredentials removes the credentials of registry host from where
// StoreCredentials puts them; found says whether there were any.
func EraseCredentials(host string) (where string, found bool, err error) {
	cf, err := config.Load(os.Getenv("DOCKER_CONFIG"))
	if err != nil {
		return "", false, fmt.Errorf("reading the docker config: %w", err)
	}
	key := dockerKey(host)
	store := cf.GetCredentialsStore(key)
	where = credentialsPlace(cf.Filename, cf.CredentialHelpers[key], cf.CredentialsStore)
	ac, err := store.Get(key)
	if err != nil {
		return where, false, fmt.Errorf("reading the credentials for %s: %w", host, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && ac.Auth == "" {
		return where, false, nil
	}
	if err := store.Erase(key); err != nil {
		return where, true, fmt.Errorf("removing the credentials for %s: %w", host, err)
	}
	return where, true, nil
}

func credentialsPlace(file, helper, store string) string {
	switch {
	case helper != "":
		return "credential helper docker-credential-" + helper
	case store != "":
		return "credential store docker-credential-" + store
	}
	return file
}

// CredentialSource says where docker (and so skiff) finds credentials for
// registry host: a credential helper, the credential store, the docker
// config file, or nowhere ("").
func CredentialSource(host string) string {
	cf, err := config.Load(os.Getenv("DOCKER_CONFIG"))
	if err != nil {
		return "unreadable docker config: " + err.Error()
	}
	key := dockerKey(host)
	if cf.CredentialHelpers[key] == "" && cf.CredentialsStore == "" {
		if _, ok := cf.AuthConfigs[key]; !ok {
			return ""
		}
	}
	return credentialsPlace(cf.Filename, cf.CredentialHelpers[key], cf.CredentialsStore)
}

// AnonymousPull reports whether repo (host/path) may be pulled from
// without credentials, as a node with none would: a token exchange as
// nobody, then the repository's tag list.
func (r *Registries) AnonymousPull(ctx context.Context, repo string) (bool, error) {
	ref, err := r.ParseReference(repo + ":latest")
	if err != nil {
		return false, err
	}
	rc := ref.Context()
	rt := r.opts.Transport // bounded by Timeout (NewRegistries)
	tr, err := transport.NewWithContext(ctx, rc.Registry, authn.Anonymous, rt, []string{rc.Scope(transport.PullScope)})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return false, nil
		}
		return false, reachErr(rc.RegistryStr(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/%s/tags/list", rc.Registry.Scheme(), rc.RegistryStr(), rc.RepositoryStr()), nil)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false, reachErr(rc.RegistryStr(), err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, nil
	}
	return true, nil
}

// DockerConfigJSON is a kubernetes.io/dockerconfigjson Secret's data for
// registry host alone, from the credentials kc finds for it (those skiff
// pushes with). It fails when kc has none.
func DockerConfigJSON(host string, kc authn.Keychain) ([]byte, error) {
	reg, err := name.NewRegistry(host)
	if err != nil {
		return nil, err
	}
	auth, err := kc.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("finding the credentials for %s: %w", host, err)
	}
	ac, err := auth.Authorization()
	if err != nil {
		return nil, fmt.Errorf("reading the credentials for %s: %w", host, err)
	}
	if auth == authn.Anonymous || (ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return nil, &NoCredentialsError{Registry: host}
	}
	entry := map[string]string{}
	if ac.Username != "" || ac.Password != "" {
		entry["username"], entry["password"] = ac.Username, ac.Password
		entry["auth"] = base64.StdEncoding.EncodeToString([]byte(ac.Username + ":" + ac.Password))
	} else if ac.Auth != "" {
		entry["auth"] = ac.Auth
	}
	if ac.IdentityToken != "" {
		entry["identitytoken"] = ac.IdentityToken
	}
	if ac.RegistryToken != "" {
		entry["registrytoken"] = ac.RegistryToken
	}
	return json.Marshal(map[string]any{"auths": map[string]any{dockerKey(host): entry}})
}

// NoCredentialsError says skiff has no credentials for a registry that
// wants them.
type NoCredentialsError struct{ Registry string }

func (e *NoCredentialsError) Error() string {
	return fmt.Sprintf("%s wants credentials to pull, and skiff has none for it; run `skiff login %s`", e.Registry, e.Registry)
}
