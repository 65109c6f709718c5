#!/usr/bin/env bash
# Benchmark: what skiff-relay's proxy adds (testscripts/bench/proxyload):
# RATE requests a second through the proxy and RATE straight to the same
# Go app on loopback, interleaved in the same run, for DURATION; the
# latency percentiles of both, their difference, and the relay's RSS
# (proxy alone, GOMEMLIMIT as the chart sets it). RUNS times.
#
#   RUNS=3 RATE=500 testscripts/bench/proxy.sh     # from the repository root
#
# Needs only Go. The relay is built with the release's flags.
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-500} DURATION=${DURATION:-20s}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -C "$root" -trimpath -ldflags '-s -w' -o "$work/skiff-relay" ./cmd/skiff-relay
go build -C "$root" -o "$work/proxyload" ./testscripts/bench/proxyload
for i in $(seq "$RUNS"); do
  echo "### run $i"
  "$work/proxyload" -relay "$work/skiff-relay" -rate "$RATE" -duration "$DURATION"
  echo
done
