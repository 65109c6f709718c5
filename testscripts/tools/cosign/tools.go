//go:build tools

// Package tools pins the cosign CLI the e2e tests run (build.sh builds it).
package tools

import _ "github.com/sigstore/cosign/v3/cmd/cosign"
