package publish

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiffdev/skiff/internal/engine"
)

// Credentials are an account on a registry.
type Credentials = engine.Credentials

// BadCredentialsError says a registry refused credentials.
type BadCredentialsError struct {
	Registry string
	Status   int
}

func (e *BadCredentialsError) Error() string {
	return fmt.Sprintf("%s refused the username and password (%d %s); nothing was stored", e.Registry, e.Status, http.StatusText(e.Status))
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
