package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/skiffdev/skiff/internal/doctor"
)

// Registry checks that the credentials skiff pushes with may push to repo
// (host/path): it starts a blob upload and cancels it, pushing nothing.
// source says where the credentials come from (publish.CredentialSource);
// rt nil is go-containerregistry's default transport.
func Registry(repo name.Repository, kc authn.Keychain, rt http.RoundTripper, source func(host string) string) doctor.Check {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	return doctor.Check{Name: "registry " + repo.RegistryStr(), Run: func(ctx context.Context) doctor.Result {
		host := repo.RegistryStr()
		from := source(host)
		if from == "" {
			from = "none, anonymous"
		}
		login := fmt.Sprintf("run `docker login %s` with an account that may push to %s", host, repo)
		done := make(chan error, 1)
		go func() { done <- remote.CheckPushPermission(repo.Tag("skiff-doctor"), kc, rt) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			return doctor.Fails(fmt.Sprintf("%s does not answer (credentials: %s)", host, from), "check the registry address in skiff.yaml and the network")
		}
		if err == nil {
			return doctor.Okay(fmt.Sprintf("may push to %s (credentials: %s)", repo, from))
		}
		var te *transport.Error
		var ne net.Error
		var oe *net.OpError
		switch {
		case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
			if from == "none, anonymous" {
				return doctor.Fails(fmt.Sprintf("%s wants credentials to push to %s, and there are none", host, repo), login)
			}
			return doctor.Fails(fmt.Sprintf("%s refused the credentials from %s for a push to %s (%d)", host, from, repo, te.StatusCode), login)
		case errors.As(err, &oe) || errors.As(err, &ne):
			return doctor.Fails(fmt.Sprintf("cannot reach %s: %v", host, err), "check the registry address in skiff.yaml and the network")
		}
		return doctor.Fails(fmt.Sprintf("push check to %s failed (credentials: %s): %v", repo, from, err), login)
	}}
}

// PullAccess checks that the cluster's nodes will be able to pull from
// repo: anonymously, or through the pull Secret deploy keeps, which needs
// credentials here. anonymous asks the registry as nobody (see
// registry.Client.AnonymousPull); creds fails when there are none to
// make the Secret from; mode is skiff.yaml's registryAuth.
func PullAccess(repo, mode string, anonymous func(ctx context.Context) (bool, error), creds func() error) doctor.Check {
	return doctor.Check{Name: "pull access", Run: func(ctx context.Context) doctor.Result {
		if mode == "none" {
			return doctor.Skips("registryAuth: none: the nodes pull with what they have")
		}
		open := false
		if mode != "pull-secret" {
			var err error
			if open, err = anonymous(ctx); err != nil {
				return doctor.Warns(fmt.Sprintf("could not ask whether %s may be pulled without credentials: %v", repo, err), "set registryAuth in skiff.yaml")
			}
		}
		if open {
			return doctor.Okay(fmt.Sprintf("%s may be pulled without credentials: pods need no pull secret", repo))
		}
		if err := creds(); err != nil {
			return doctor.Fails(fmt.Sprintf("pods need a pull secret for %s, and there are no credentials to make it from", repo), "run `skiff login` for the registry")
		}
		return doctor.Okay(fmt.Sprintf("%s wants credentials to pull: deploy keeps a pull secret from yours", repo))
	}}
}
