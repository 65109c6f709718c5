#!/usr/bin/env bash
# Benchmark: scale to zero on the test cluster, with KEDA and its HTTP
# add-on. For a function of each language of LANGS (default: go node
# python) with
# `scale: {min: 0, idle: 5s}`: WAKES times, wait until it has no pods, then
# time one GET through the interceptor (a port-forward to its pod, with the
# function's Host header) until the 200, with when KEDA scaled the
# Deployment, the pod appeared, its container started and it became ready.
# Then, for Go, the warm path: REQUESTS GETs at RATE per second through the
# interceptor and straight to the pod (a port-forward each), alternating in
# blocks, p50 and p99, and the difference.
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   WAKES=10 testscripts/bench/scale.sh        # from the repository root
#
# Needs: the test cluster (it installs KEDA and the add-on), node and
# python3: their functions run on bases made from the host's (BASES=REPO
# names others, holding node:20 and python:3.11).
set -euo pipefail

WAKES=${WAKES:-10} RATE=${RATE:-50} REQUESTS=${REQUESTS:-1000} LANGS=${LANGS:-go node python}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
ns=bench-scale
cleanup() {
  (cd "$work/shop" 2>/dev/null && "$work/skiff" delete --all >/dev/null 2>&1) || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
go build -C "$root" -o "$work/wake" ./testscripts/bench/wake
skiff=$work/skiff

proj=$work/shop
first=
for lang in $LANGS; do
  if [ -z "$first" ]; then
    "$skiff" init "$proj" --kind function --lang "$lang" --name "fn-$lang" --registry "$SKIFF_TEST_REGISTRY/bench-scale" -n "$ns" --non-interactive >/dev/null 2>&1
    first=1
  else
    (cd "$proj" && "$skiff" add "fn-$lang" --kind function --lang "$lang" >/dev/null 2>&1)
  fi
  python3 - "$proj/skiff.yaml" "fn-$lang" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    scale: {{min: 0, max: 3, idle: 5s}}\n", 1)
open(path, "w").write(text)
PY
done
# shellcheck disable=SC2086 # LANGS is a list
use_host_bases "$proj" $LANGS
(cd "$proj" && "$skiff" deploy --timeout 5m >/dev/null)

echo "| scenario | n | p50 | p90 | max |"
echo "|---|---|---|---|---|"
for lang in $LANGS; do
  requests=0
  [ "$lang" = go ] && requests=$REQUESTS
  "$work/wake" -n "$ns" -release "shop-fn-$lang" -workload "fn-$lang" -label "$lang" -path "/?name=Ada" -want "Ada" \
    -wakes "$WAKES" -rate "$RATE" -requests "$requests" 2>"$work/wake-$lang.log" >"$work/out-$lang.md" || { cat "$work/wake-$lang.log" >&2; exit 1; }
  grep '^| wake' "$work/out-$lang.md"
done
echo
for lang in $LANGS; do grep '^median' "$work/out-$lang.md"; done
echo
echo "| warm path | via | n | p50 | p99 |"
echo "|---|---|---|---|---|"
for lang in $LANGS; do grep '^| warm' "$work/out-$lang.md" || true; done
