#!/usr/bin/env bash
# Benchmark: what skiff-relay's proxy adds (testscripts/bench/proxyload):
# RATE requests a second straight to a Go app on loopback and RATE through
# the relay in front of it, interleaved in the same run, for DURATION; the
# latency percentiles of both, their difference, and the relay's RSS
# (proxy alone, GOMEMLIMIT as the chart sets it). RUNS times. With BASE (a
# git revision), a relay built from that revision runs beside this tree's
# in the same runs, RATE requests a second through each. SPLICE=1 adds a
# TCP splice (no HTTP: the floor of a proxy hop), MAXPROCS1=1 this tree's
# relay again under GOMAXPROCS=1.
#
#   RUNS=3 RATE=500 testscripts/bench/proxy.sh               # from the repository root
#   BASE=main RUNS=5 RATE=500 DURATION=10s testscripts/bench/proxy.sh
#   BASE=main SPLICE=1 MAXPROCS1=1 RUNS=5 RATE=500 DURATION=10s testscripts/bench/proxy.sh
#
# Needs only Go (and git for BASE). The relays are built with the release's flags.
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-500} DURATION=${DURATION:-20s} BASE=${BASE:-} SPLICE=${SPLICE:-} MAXPROCS1=${MAXPROCS1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -C "$root" -trimpath -ldflags '-s -w' -o "$work/skiff-relay" ./cmd/skiff-relay
relays=(-relay "tree=$work/skiff-relay")
if [ -n "$BASE" ]; then
  rev=$(git -C "$root" rev-parse --short "$BASE")
  mkdir "$work/base"
  git -C "$root" archive "$rev" | tar -x -C "$work/base"
  CGO_ENABLED=0 go build -C "$work/base" -trimpath -ldflags '-s -w' -o "$work/skiff-relay.base" ./cmd/skiff-relay
  relays+=(-relay "base-$rev=$work/skiff-relay.base")
fi
if [ -n "$MAXPROCS1" ]; then
  printf '#!/bin/sh\nGOMAXPROCS=1 exec %s\n' "$work/skiff-relay" >"$work/skiff-relay.maxprocs1"
  chmod +x "$work/skiff-relay.maxprocs1"
  relays+=(-relay "tree-gomaxprocs1=$work/skiff-relay.maxprocs1")
fi
if [ -n "$SPLICE" ]; then
  relays+=(-splice)
fi
go build -C "$root" -o "$work/proxyload" ./testscripts/bench/proxyload
for i in $(seq "$RUNS"); do
  echo "### run $i ($(uptime | sed 's/.*load/load/'))"
  "$work/proxyload" "${relays[@]}" -rate "$RATE" -duration "$DURATION"
  echo
done
