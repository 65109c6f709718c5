#!/usr/bin/env bash
# Benchmark: live config on the test cluster. For a function of each
# language of LANGS (default: go node python) with `liveConfig: true` and
# two pods, and a Go function without it (its pods roll on a change):
# CHANGES times `skiff config set GREETING=... --apply`, then poll every
# pod (a port-forward each, every 20 ms) until all answer with the new
# value. Prints when config set returned, how much later every pod had the
# value, and whether the pods are the ones it started with.
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   CHANGES=10 testscripts/bench/liveconfig.sh     # from the repository root
#
# Needs: the test cluster, node and python3: their functions run on bases
# made from the host's (BASES=REPO names others, holding node:20 and
# python:3.11).
set -euo pipefail

CHANGES=${CHANGES:-10} LANGS=${LANGS:-go node python}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
ns=bench-live
cleanup() {
  (cd "$work/shop" 2>/dev/null && "$work/skiff" delete --all >/dev/null 2>&1) || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
go build -C "$root" -o "$work/propagate" ./testscripts/bench/propagate
skiff=$work/skiff

proj=$work/shop
"$skiff" init "$proj" --kind function --lang go --name restart-go --registry "$SKIFF_TEST_REGISTRY/bench-live" -n "$ns" --non-interactive >/dev/null 2>&1
for lang in $LANGS; do
  (cd "$proj" && "$skiff" add "live-$lang" --kind function --lang "$lang" >/dev/null 2>&1)
done
# shellcheck disable=SC2086 # LANGS is a list
python3 - "$proj/skiff.yaml" $LANGS <<'PY'
import sys
path, langs = sys.argv[1], sys.argv[2:]
text = open(path).read()
text = text.replace("  - name: restart-go\n", "  - name: restart-go\n    replicas: 2\n    config: {GREETING: Hello}\n", 1)
for lang in langs:
    name = f"live-{lang}"
    text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    replicas: 2\n    liveConfig: true\n    config: {{GREETING: Hello}}\n", 1)
open(path, "w").write(text)
PY
# shellcheck disable=SC2086 # LANGS is a list
use_host_bases "$proj" $LANGS
(cd "$proj" && "$skiff" deploy --timeout 5m >/dev/null)

echo "| function | n | config set returns (p50) | then every pod has it: p50 | p90 | max | change to every pod (p50) | pods |"
echo "|---|---|---|---|---|---|---|---|"
for w in $(for l in $LANGS; do echo "live-$l"; done) restart-go; do
  "$work/propagate" -n "$ns" -release "shop-$w" -workload "$w" -dir "$proj" -skiff "$skiff" \
    -changes "$CHANGES" -label "$w" 2>"$work/$w.log" || { cat "$work/$w.log" >&2; exit 1; }
done
