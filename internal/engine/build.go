package engine

import (
	"context"
	"crypto/ecdsa"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// Destinations of images.
const (
	DestLocal    = "local"    // the local OCI store in the cache folder
	DestRegistry = "registry" // the project's registry
	DestLayout   = "oci"      // an OCI layout folder
	DestTarball  = "tar"      // a tarball
)

// BuildConfig says how a command builds its workloads' images and where
// they go.
type BuildConfig struct {
	// Project is resolved for the environment; Root is the folder of
	// skiff.yaml.
	Project *project.Project
	Root    string
	// Events receives every step (nil: nowhere).
	Events func(event.Event)
	// Dest is where images go (DestLocal, ...); DestPath is the folder or
	// file of DestLayout and DestTarball.
	Dest     string
	DestPath string
	// Force replaces a tarball that skiff did not write.
	Force bool
	// Tag is the tag images are published under.
	Tag string
	// Platforms to build for.
	Platforms []v1.Platform
	// Base, when set, is the base of every workload; else each workload's.
	Base string
	// SBOM asks for an SPDX document with each image.
	SBOM bool
	// NoCache builds even what the build cache has.
	NoCache bool
	// Jobs bounds the builds that run at once (0: the number of CPUs).
	Jobs int
	// Insecure lists registry hosts that may be reached over plain HTTP.
	Insecure []string
	// UserAgent is skiff's, for registries; Version goes into the images.
	UserAgent, Version string
	// CacheDir is skiff's cache folder (the build cache, the local store).
	CacheDir string
	// Getenv reads SOURCE_DATE_EPOCH and the like (nil: none set).
	Getenv func(string) string
	// Pushing is told the reference about to be pushed (nil: nothing).
	Pushing func(ref string)
	// Repaired is told when a store's index was damaged and rebuilt.
	Repaired func(dir string, recovered int)
	// SigningKey, when set, signs each image pushed to a registry and
	// attests its SBOM and provenance (a signed event).
	SigningKey *ecdsa.PrivateKey
	// CheckKey, when set, verifies each image pushed to a registry and
	// warns (a notice) when it does not verify: dev with verify:.
	CheckKey *ecdsa.PublicKey
}

// Builder builds and publishes the images of workloads.
type Builder interface {
	// Build builds and publishes the images of ws, in the order of ws.
	Build(ctx context.Context, ws []project.Workload) ([]Image, error)
}

// Image is a built and published workload image.
type Image struct {
	Workload  string   `json:"workload"`
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	Platforms []string `json:"platforms"`
	// Status is "built" or "reused" (from the build cache).
	Status     string `json:"status"`
	Uploaded   bool   `json:"uploaded"`
	Base       string `json:"base"`
	BaseDigest string `json:"baseDigest"`
	SBOM       string `json:"sbom,omitempty"`
	// Pull is the reference by digest a cluster pulls (deploy and render).
	Pull string `json:"-"`
	// Built is the image itself when it is one (one platform), for skiff
	// dev's live updates; nil for an index.
	Built v1.Image `json:"-"`
}

// Credentials are an account on a registry.
type Credentials struct {
	Username, Password string
}

// Registry is a client of the registries, for what a command asks of one
// itself.
type Registry interface {
	// Verify checks creds against registry host; the password appears in
	// no error.
	Verify(ctx context.Context, host string, creds Credentials) error
}
