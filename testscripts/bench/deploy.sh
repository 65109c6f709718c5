#!/usr/bin/env bash
# Benchmark: `skiff deploy --no-build` vs `helm upgrade --install --wait` of
# the same chart and values (skiff's base chart for a Go http function),
# same image, same cluster, each into a namespace of its own. Both are
# upgrades of a running release that change nothing but the revision, so
# the time is the Helm SDK work plus waiting for readiness. Memory is the
# maximum resident set size (/usr/bin/time -v) of MEMRUNS runs of each,
# alternating, as median and range.
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   testscripts/bench/deploy.sh            # from the repository root
#   RUNS=10 MEMRUNS=10 SKIFF=/path/to/skiff testscripts/bench/deploy.sh
#
# Needs: the test cluster, hyperfine, /usr/bin/time, and the helm v3.22.0
# CLI (go install helm.sh/helm/v3/cmd/helm@v3.22.0). SKIFF: a skiff binary
# to measure instead of building this checkout's.
set -euo pipefail

RUNS=${RUNS:-10}
MEMRUNS=${MEMRUNS:-10}
HELM=${HELM:-$(go env GOPATH)/bin/helm}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
cleanup() {
  "$work/skiff" delete --all -n bench-skiff >/dev/null 2>&1 || true
  "$HELM" uninstall bench-hello -n bench-helm --wait >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for b in hyperfine "$HELM"; do
  command -v "$b" >/dev/null || { echo "bench: $b is not installed" >&2; exit 1; }
done
"$HELM" version --short | grep -q '^v3\.22\.0' || echo "bench: warning: helm is $("$HELM" version --short), not v3.22.0" >&2

if [ -n "${SKIFF:-}" ]; then
  cp "$SKIFF" "$work/skiff"
else
  go build -C "$root" -o "$work/skiff" ./cmd/skiff
fi
skiff=$work/skiff
"$skiff" init "$work/bench" --kind function --lang go --name hello --registry "$SKIFF_TEST_REGISTRY/bench" --non-interactive >/dev/null 2>&1
cd "$work/bench"

# First deploy builds and pushes; take its image for helm too.
"$skiff" deploy -n bench-skiff -o json --timeout 3m >"$work/first.json"
image=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["image"])' "$work/first.json")
go run -C "$root" ./testscripts/bench/chartexport "$work/bench" hello "$image" bench-helm "$work/helm"
"$HELM" upgrade --install bench-hello "$work/helm/chart" -f "$work/helm/values.yaml" -n bench-helm --create-namespace --wait --timeout 3m >/dev/null

hyperfine --runs "$RUNS" --warmup 1 --export-json "$work/deploy.json" \
  -n "skiff deploy --no-build" "$skiff deploy --no-build -n bench-skiff --timeout 3m" \
  -n "helm upgrade --install --wait" "$HELM upgrade --install bench-hello $work/helm/chart -f $work/helm/values.yaml -n bench-helm --wait --timeout 3m"

mem() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {printf "%.1f\n", $2/1024}'; }
: >"$work/skiff.rss"; : >"$work/helm.rss"
for _ in $(seq "$MEMRUNS"); do
  mem "$skiff" deploy --no-build -n bench-skiff --timeout 3m >>"$work/skiff.rss"
  mem "$HELM" upgrade --install bench-hello "$work/helm/chart" -f "$work/helm/values.yaml" -n bench-helm --wait --timeout 3m >>"$work/helm.rss"
done

python3 - "$work/deploy.json" "$work/skiff.rss" "$work/helm.rss" <<'PY'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
s, h = r["skiff deploy --no-build"], r["helm upgrade --install --wait"]
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
for name, x in (("skiff deploy --no-build", s), ("helm upgrade --install --wait", h)):
    t = x["times"]
    print(f"{name + ':':31s} mean {x['mean']:.3f} s ± {x['stddev']:.3f}, median {statistics.median(t):.3f} s, p90 {q(t, 0.9):.3f} s ({len(t)} runs)")
print(f"time skiff/helm: {s['mean']/h['mean']:.2f}x of the mean, {statistics.median(s['times'])/statistics.median(h['times']):.2f}x of the median (target <= 0.8x)")
sm = [float(v) for v in open(sys.argv[2]).read().split()]
hm = [float(v) for v in open(sys.argv[3]).read().split()]
print(f"max RSS skiff: median {statistics.median(sm):.1f} MiB ({min(sm):.1f}-{max(sm):.1f}, {len(sm)} runs)")
print(f"max RSS helm:  median {statistics.median(hm):.1f} MiB ({min(hm):.1f}-{max(hm):.1f}, {len(hm)} runs)")
print(f"max RSS skiff/helm: {statistics.median(sm)/statistics.median(hm):.2f}x of the medians (target <= 1.0x)")
PY
