#!/usr/bin/env bash
# Benchmark: scale to zero on the test cluster, with KEDA and its HTTP
# add-on. For a function of each language of LANGS (default: go node
# typescript python) with `scale: {min: 0, max: 3, idle: 5s}`, deployed with the
# metrics proxy (skiff-relay in the pod, in front of the workload) and
# without it (`metrics: {proxy: false}`, in a second namespace), PROXY
# (both, on or off; default both): WAKES rounds in which each function
# waits until every one has no pods, then one GET through the
# interceptor (VIA=service, the default: its ClusterIP from this node, as
# a caller in the cluster; VIA=forward: a port-forward to its pod, as skiff
# invoke does; with the function's Host header) is timed until the 200, with when KEDA scaled the Deployment,
# the pod appeared, the relay and the workload's container ran, the pod
# was ready and its endpoint ready in the EndpointSlice. Then BURST
# requests at once to each function of BURST_LANGS (default python) at
# zero pods (BURSTS rounds, default 1), and, for Go, the warm path: REQUESTS GETs at RATE per second
# through the interceptor and straight to the pod (its IP, or with
# VIA=forward a port-forward each),
# alternating in blocks, p50 and p99, and the difference.
#
# BEFORE=PATH (a skiff binary built from another checkout, e.g. main's)
# adds a variant deployed with it, behind the proxy, in a third namespace:
# its wakes take turns with the others', so a chart change is measured
# side by side with the chart it replaces ("LANG, before" in the tables).
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   WAKES=10 testscripts/bench/scale.sh        # from the repository root
#
# Needs: the test cluster (it installs KEDA and the add-on), node and
# python3: their functions run on bases made from the host's (BASES=REPO
# names others, holding node:20 and python:3.11). The proxy's relay image
# is SKIFF_RELAY_IMAGE, else one built from this checkout (hack/relayimage).
set -euo pipefail

WAKES=${WAKES:-10} RATE=${RATE:-50} REQUESTS=${REQUESTS:-1000} LANGS=${LANGS:-go node typescript python}
PROXY=${PROXY:-both} VIA=${VIA:-service} BURST=${BURST:-50} BURSTS=${BURSTS:-1} BURST_LANGS=${BURST_LANGS:-python}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
case $PROXY in
both) variants="on off" ;;
on | off) variants=$PROXY ;;
*) echo "PROXY=$PROXY: want both, on or off" >&2; exit 2 ;;
esac
if [ -n "${BEFORE:-}" ]; then
  [ -x "$BEFORE" ] || { echo "BEFORE=$BEFORE: want a skiff binary (go build -o /tmp/skiff-before ./cmd/skiff in another checkout)" >&2; exit 2; }
  BEFORE=$(cd "$(dirname "$BEFORE")" && pwd)/$(basename "$BEFORE")
  variants="$variants before"
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
cleanup() {
  for v in $variants; do
    (cd "$work/shop-$v" 2>/dev/null && "$(skiff_of "$v")" delete --all >/dev/null 2>&1) || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
# skiff_of VARIANT: the skiff binary that deploys that variant.
skiff_of() { if [ "$1" = before ]; then echo "$BEFORE"; else echo "$work/skiff"; fi; }
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
go build -C "$root" -o "$work/wake" ./testscripts/bench/wake
case " $variants " in *" on "* | *" before "*)
  SKIFF_RELAY_IMAGE=${SKIFF_RELAY_IMAGE:-$(go run -C "$root" ./hack/relayimage --registry "$SKIFF_TEST_REGISTRY/bench" --tag bench)}
  export SKIFF_RELAY_IMAGE ;;
esac

# namespace VARIANT: where that variant's functions run.
namespace() { case $1 in on) echo bench-scale ;; before) echo bench-scale-before ;; *) echo bench-scale-direct ;; esac; }
# label LANG VARIANT: what the tables call a function.
label() { case $2 in on) echo "$1" ;; before) echo "$1, before" ;; *) echo "$1, no proxy" ;; esac; }

for v in $variants; do
  proj=$work/shop-$v ns=$(namespace "$v") first='' skiff=$(skiff_of "$v")
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
  if [ "$v" = off ]; then
    python3 - "$proj/skiff.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read().replace("workloads:\n", "metrics: {proxy: false}\nworkloads:\n", 1)
open(path, "w").write(text)
PY
  fi
  # shellcheck disable=SC2086 # LANGS is a list
  use_host_bases "$proj" $LANGS
  (cd "$proj" && "$skiff" deploy --timeout 5m >/dev/null)
done

# target LANG VARIANT: the wake tool's -target for that function.
# (The project is named after its folder, shop-VARIANT; its releases
# PROJECT-WORKLOAD.)
target() { local ns; ns=$(namespace "$2"); echo "$(label "$1" "$2")=$ns/shop-$2-fn-$1/fn-$1"; }
args=() bursts=()
for lang in $LANGS; do
  for v in $variants; do
    args+=(-target "$(target "$lang" "$v")")
    case " $BURST_LANGS " in *" $lang "*) bursts+=(-target "$(target "$lang" "$v")") ;; esac
  done
done
"$work/wake" "${args[@]}" -via "$VIA" -path "/?name=Ada" -want "Ada" -wakes "$WAKES" 2>"$work/wake.log" >"$work/out.md" || { cat "$work/wake.log" >&2; exit 1; }
if [ "$BURST" -gt 0 ] && [ ${#bursts[@]} -gt 0 ]; then
  "$work/wake" "${bursts[@]}" -via "$VIA" -path "/?name=Ada" -want "Ada" -wakes 0 -burst "$BURST" -bursts "$BURSTS" 2>>"$work/wake.log" >>"$work/out.md" || { cat "$work/wake.log" >&2; exit 1; }
fi
case " $LANGS " in *" go "*)
  if [ "$REQUESTS" -gt 0 ]; then
    first=${variants%% *}
    "$work/wake" -target "$(target go "$first")" -via "$VIA" -path "/?name=Ada" -want "Ada" -wakes 0 -rate "$RATE" -requests "$REQUESTS" 2>>"$work/wake.log" >>"$work/out.md" || { cat "$work/wake.log" >&2; exit 1; }
  fi ;;
esac
cat "$work/out.md"
echo
echo "each wake and burst, in the order taken:"
grep -E ' wake | at once: ' "$work/wake.log"
