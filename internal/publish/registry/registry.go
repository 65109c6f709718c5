// Package registry is skiff's client of OCI registries (go-containerregistry's
// remote): base images read, images and their SBOMs pushed by digest with
// the tag moved last, credentials checked, anonymous pulls tried. Package
// publish keeps the stores that need no network (the local store, OCI
// layouts, tarballs, the build cache) and the docker config's credentials.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/publish"
)

// Options configure access to registries.
type Options struct {
	// Keychain finds credentials (authn.DefaultKeychain: the docker config
	// and its credential helpers).
	Keychain authn.Keychain
	// Insecure lists hosts ("host" or "host:port") that may be reached over
	// plain HTTP. Loopback hosts always may.
	Insecure []string
	// Transport is the HTTP transport (nil: ggcr's default).
	Transport http.RoundTripper
	// Attempts is how many times a request is tried in all when it fails
	// transiently (default 3: the first try and 2 retries).
	Attempts int
	// Backoff is the first wait between retries (default 500ms, tripled each time).
	Backoff time.Duration
	// UserAgent identifies skiff to registries.
	UserAgent string
	// Timeout bounds each wait for a registry: to connect, to shake hands,
	// for the headers of an answer (default DefaultTimeout). A registry
	// silent for that long is given up on, without retries.
	Timeout time.Duration
}

// DefaultTimeout is how long skiff waits for a registry to answer.
const DefaultTimeout = 10 * time.Second

// NoAnswerError says a registry accepted a connection, or not even that,
// and did not answer in time.
type NoAnswerError struct {
	Host  string
	After time.Duration
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no answer from %s within %s; check the address and that the registry runs", e.Host, e.After)
}

// timeoutGuard turns a request that timed out into a NoAnswerError, which
// go-containerregistry does not retry (a silent registry stays silent).
type timeoutGuard struct {
	next  http.RoundTripper
	after time.Duration
}

func (g *timeoutGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	var nerr net.Error
	if err != nil && req.Context().Err() == nil && errors.As(err, &nerr) && nerr.Timeout() {
		return nil, &NoAnswerError{Host: req.URL.Host, After: g.after}
	}
	return resp, err
}

// timedTransport is ggcr's default transport with every wait for the
// registry bounded by d.
func timedTransport(d time.Duration) http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = d
	t.ResponseHeaderTimeout = d
	return t
}

// Client reads base images from and pushes images to registries,
// sharing authentication and connections between calls.
type Client struct {
	opts   Options
	pusher *remote.Pusher
	puller *remote.Puller
}

// New returns a client for registries.
func New(opts Options) (*Client, error) {
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Attempts == 0 {
		opts.Attempts = 3
	}
	if opts.Backoff == 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	inner := opts.Transport
	if inner == nil {
		inner = timedTransport(opts.Timeout)
	}
	inner = &timeoutGuard{next: inner, after: opts.Timeout}
	opts.Transport = inner
	ro := []remote.Option{
		remote.WithAuthFromKeychain(opts.Keychain),
		remote.WithTransport(&plainHTTPGuard{next: inner, insecure: opts.Insecure}),
		remote.WithRetryBackoff(remote.Backoff{Duration: opts.Backoff, Factor: 3, Jitter: 0.1, Steps: opts.Attempts}),
		remote.WithJobs(4),
	}
	if opts.UserAgent != "" {
		ro = append(ro, remote.WithUserAgent(opts.UserAgent))
	}
	pusher, err := remote.NewPusher(ro...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ro...)
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, pusher: pusher, puller: puller}, nil
}

// RemoteOptions are the options of every request to a registry
// (credentials, transport, retries), for the packages that reach
// registries beyond Base and Publish (signatures).
func (r *Client) RemoteOptions() []remote.Option {
	return []remote.Option{remote.Reuse(r.puller), remote.Reuse(r.pusher)}
}

// isLoopback reports whether host (with or without a port) is a loopback
// name or address.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (r *Client) insecure(host string) bool {
	if isLoopback(host) {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	return slices.Contains(r.opts.Insecure, host) || slices.Contains(r.opts.Insecure, h)
}

// ParseReference parses ref, allowing plain HTTP for the hosts that may use
// it.
func (r *Client) ParseReference(ref string) (name.Reference, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	if r.insecure(parsed.Context().RegistryStr()) {
		return name.ParseReference(ref, name.Insecure)
	}
	return parsed, nil
}

// plainHTTPGuard refuses plain HTTP to hosts that were not allowed it
// (go-containerregistry otherwise falls back to HTTP for private
// addresses on its own).
type plainHTTPGuard struct {
	next     http.RoundTripper
	insecure []string
}

func (g *plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Host) &&
		!slices.Contains(g.insecure, req.URL.Host) && !slices.Contains(g.insecure, req.URL.Hostname()) {
		return nil, &publish.PlainHTTPError{Host: req.URL.Host}
	}
	return g.next.RoundTrip(req)
}

// Base fetches a base image (or index) by reference; it implements
// build.BaseSource.
func (r *Client) Base(ctx context.Context, ref string) (*build.Base, error) {
	parsed, err := r.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}
	desc, err := remote.Get(parsed, remote.WithContext(ctx), remote.Reuse(r.puller))
	if err != nil {
		return nil, explain(fmt.Sprintf("reading base image %s", ref), parsed.Context().RegistryStr(), err,
			"push the base image there, or choose another base (build.base in skiff.yaml)")
	}
	b := &build.Base{Ref: ref, Digest: desc.Digest}
	if desc.MediaType.IsIndex() {
		b.Index, err = desc.ImageIndex()
	} else {
		b.Image, err = desc.Image()
	}
	if err != nil {
		return nil, fmt.Errorf("reading base image %s: %w", ref, err)
	}
	return b, nil
}

// explain turns a registry error into a message that says what to do.
func explain(what, host string, err error, notFoundFix string) error {
	var silent *NoAnswerError
	if errors.As(err, &silent) {
		return fmt.Errorf("%s: %w", what, silent)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: registry %s refused access (%d %s); log in with `docker login %s` (skiff reads ~/.docker/config.json and its credential helpers)",
				what, host, terr.StatusCode, http.StatusText(terr.StatusCode), host)
		case http.StatusNotFound:
			return fmt.Errorf("%s: not found in %s; %s", what, host, notFoundFix)
		}
		if terr.StatusCode >= 500 {
			return fmt.Errorf("%s: registry %s failed (%d %s) and kept failing after retries; try again later or check the registry's logs: %w",
				what, host, terr.StatusCode, http.StatusText(terr.StatusCode), err)
		}
	}
	var nerr net.Error
	var operr *net.OpError
	if errors.As(err, &nerr) || errors.As(err, &operr) {
		return fmt.Errorf("%s: cannot reach registry %s: %w; check the address and that the registry runs", what, host, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Publisher publishes to a registry under a name prefix such as
// "registry.example.com/team"; it is a publish.Interface.
type Publisher struct {
	Prefix string
	Client *Client
	// Pushing, when set, is told the reference about to be pushed before
	// the registry is first asked: what the user waits for.
	Pushing func(ref string)
}

// Publish pushes everything by digest first (the layers, the platform
// manifests, the SBOM) and moves the tag last, so a failed push leaves the
// tag where it was. Nothing is uploaded when the tag already points at the
// artifact.
func (p *Publisher) Publish(ctx context.Context, a *build.Artifact, imageName, tag string) (*publish.Result, error) {
	r := p.Client
	ref := publish.ImageName(p.Prefix, imageName) + ":" + tag
	parsed, err := r.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	tagRef, ok := parsed.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("%s is not a tag reference", ref)
	}
	host := tagRef.RegistryStr()
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	repo := tagRef.Context()
	res := &publish.Result{Reference: ref + "@" + d.String(), Digest: d.String()}
	if p.Pushing != nil {
		p.Pushing(ref)
	}
	pushErr := func(err error) error {
		return explain("pushing "+ref, host, err, "check the registry address and that the repository may be created")
	}
	var sbomTag name.Tag
	if a.SBOM != nil {
		sbomTag = repo.Tag(publish.SBOMTag(d))
		res.SBOM = sbomTag.String()
	}

	// The fast path: the tag (and SBOM) already point at this artifact.
	desc, err := remote.Head(tagRef, remote.WithContext(ctx), remote.Reuse(r.puller))
	var silent *NoAnswerError
	if errors.As(err, &silent) {
		return nil, pushErr(err) // asking again would wait as long again
	}
	if err == nil && desc.Digest == d {
		if a.SBOM == nil {
			return res, nil
		}
		if _, err := remote.Head(sbomTag, remote.WithContext(ctx), remote.Reuse(r.puller)); err == nil {
			return res, nil
		}
	}
	res.Uploaded = true
	t := a.Taggable().(remote.Taggable)
	if _, err := remote.Head(repo.Digest(d.String()), remote.WithContext(ctx), remote.Reuse(r.puller)); err != nil {
		if err := r.pusher.Push(ctx, repo.Digest(d.String()), t); err != nil {
			return nil, pushErr(err)
		}
	}
	if a.SBOM != nil {
		img, err := publish.SBOMImage(a.SBOM)
		if err != nil {
			return nil, err
		}
		if err := r.pusher.Push(ctx, sbomTag, img); err != nil {
			return nil, pushErr(err)
		}
	}
	if err := r.pusher.Put(ctx, tagRef, t); err != nil {
		return nil, pushErr(err)
	}
	return res, nil
}

// Close does nothing: every push is complete when Publish returns.
func (p *Publisher) Close() error { return nil }

// Verify checks creds against registry host: its API root answers 200 with
// them (after the token exchange, for registries that use tokens). The
// password appears in no error.
func (r *Client) Verify(ctx context.Context, host string, creds publish.Credentials) error {
	var opts []name.Option
	if r.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("%q is not a registry host: %w", host, err)
	}
	rt := r.opts.Transport // bounded by Timeout (New)
	auth := &authn.Basic{Username: creds.Username, Password: creds.Password}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return &publish.BadCredentialsError{Registry: host, Status: te.StatusCode}
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
		return &publish.BadCredentialsError{Registry: host, Status: resp.StatusCode}
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

// AnonymousPull reports whether repo (host/path) may be pulled from
// without credentials, as a node with none would: a token exchange as
// nobody, then the repository's tag list.
func (r *Client) AnonymousPull(ctx context.Context, repo string) (bool, error) {
	ref, err := r.ParseReference(repo + ":latest")
	if err != nil {
		return false, err
	}
	rc := ref.Context()
	rt := r.opts.Transport // bounded by Timeout (New)
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
