#!/usr/bin/env bash
# Builds the cosign CLI the e2e tests check skiff's signatures with (the
# version go.mod pins) into a cache directory keyed by go.mod and go.sum,
# and prints the binary's path. A second run with the same pins builds
# nothing. Usage: bash testscripts/tools/cosign/build.sh
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
dir=${SKIFF_TOOLS_CACHE:-/var/cache/skiff-tools}/cosign-$key
if [ ! -x "$dir/cosign" ]; then
  mkdir -p "$dir"
  (cd "$src" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o "$dir/cosign.tmp" github.com/sigstore/cosign/v3/cmd/cosign)
  mv "$dir/cosign.tmp" "$dir/cosign"
fi
echo "$dir/cosign"
