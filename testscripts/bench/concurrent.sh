#!/usr/bin/env bash
# Benchmark: `skiff build` of a 4-workload project, serial (--jobs 1) vs
# concurrent (--jobs 2, the default on a 2-core machine, and --jobs 4).
# Four Go HTTP functions from skiff's template, on scratch, into the local
# store (no registry). "Cold" runs change a string in every workload
# before each run (hyperfine --prepare), so every image is compiled and
# stored again; the Go build cache stays warm, as in a day of work.
#
#   testscripts/bench/concurrent.sh           # from the repository root
#   RUNS=10 testscripts/bench/concurrent.sh
#
# Needs: go, hyperfine.
set -euo pipefail

RUNS=${RUNS:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v hyperfine >/dev/null || { echo "bench: hyperfine is not installed (apt-get install hyperfine)" >&2; exit 1; }

go build -C "$root" -o "$work/skiff" ./cmd/skiff
skiff=$work/skiff
export SKIFF_CACHE_DIR=$work/cache SOURCE_DATE_EPOCH=1700000000
proj=$work/proj
"$skiff" init "$proj" --kind function --lang go --name w0 --non-interactive >/dev/null 2>&1
for n in w1 w2 w3; do
  (cd "$proj" && "$skiff" add "$n" --kind function --lang go --non-interactive >/dev/null 2>&1)
done
stamp() {
  for n in w0 w1 w2 w3; do
    printf 'package main\n\n// benchStamp is changed by the benchmark to force a new binary.\nvar benchStamp = "%s"\n' "$1" >"$proj/$n/stamp.go"
  done
}
export -f stamp
export proj
stamp warm
(cd "$proj" && "$skiff" build --sbom none >/dev/null 2>&1)   # warm the Go build cache

cd "$proj"
hyperfine --shell bash --runs "$RUNS" --warmup 1 --export-json "$work/cold.json" \
  --prepare 'stamp $(date +%s%N)' \
  -n 'jobs=1 (serial)' "$skiff build --sbom none --jobs 1" \
  -n 'jobs=2 (default)' "$skiff build --sbom none --jobs 2" \
  -n 'jobs=4' "$skiff build --sbom none --jobs 4"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$work/noop.json" \
  -n 'no-op jobs=1' "$skiff build --sbom none --jobs 1" \
  -n 'no-op jobs=2' "$skiff build --sbom none --jobs 2"

python3 - "$work/cold.json" "$work/noop.json" <<'PY'
import json, sys
def load(p):
    return {r["command"]: r for r in json.load(open(p))["results"]}
cold, noop = load(sys.argv[1]), load(sys.argv[2])
def pct(r, q):
    t = sorted(r["times"]); return t[min(len(t) - 1, int(q * len(t)))]
serial = cold["jobs=1 (serial)"]["median"]
print("| scenario | median | p90 | vs serial |")
print("|---|---|---|---|")
for name, r in list(cold.items()) + list(noop.items()):
    base = serial if name in cold else noop["no-op jobs=1"]["median"]
    print(f"| {name} | {r['median']:.3f} s | {pct(r, 0.9):.3f} s | {r['median'] / base:.2f}x |")
PY
