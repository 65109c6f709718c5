#!/usr/bin/env bash
# Benchmark: skiff build vs ko build, same Go HTTP app (skiff's Go http
# service template), same empty base, same local docker-registry, both
# with a warm Go build cache and SBOMs on (both default to SPDX).
#
#   testscripts/bench/build.sh            # from the repository root
#   KO=/path/to/ko RUNS=10 testscripts/bench/build.sh
#
# Needs: go, docker-registry, hyperfine, python3, /usr/bin/time, and ko
# v0.19.1 (go install github.com/google/ko@v0.19.1).
set -euo pipefail

RUNS=${RUNS:-10}
KO=${KO:-$(go env GOPATH)/bin/ko}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
regpid=""
cleanup() {
  if [ -n "$regpid" ]; then kill "$regpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

for b in go docker-registry hyperfine python3 "$KO"; do
  command -v "$b" >/dev/null || { echo "bench: $b is not installed" >&2; exit 1; }
done
"$KO" version | grep -q '^v\?0\.19\.1' || echo "bench: warning: ko is $("$KO" version), not v0.19.1" >&2

# A registry of our own on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 50); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

go build -C "$root" -o "$work/skiff" ./cmd/skiff
skiff=$work/skiff
base=$reg/bases/static:1
go run -C "$root" ./testscripts/bench/pushbase "$base"

# The app: a Go http service from skiff's template, plus a stamp the
# "cold" runs change so every tool has a new binary to build and push.
"$skiff" init "$work/proj" --kind service --lang go --name app --registry "$reg/skiff" --non-interactive >/dev/null 2>&1
app=$work/proj/app
cat >"$app/stamp.go" <<'GO'
package main

import "os"

// benchStamp is changed by the benchmark to force a new binary.
var benchStamp = os.Getenv("BENCH_STAMP_bench-0")
GO
printf "defaultBaseImage: %s\n" "$base" >"$app/.ko.yaml"
(cd "$app" && go build -o /dev/null . && GOARCH=arm64 go build -o /dev/null .)   # warm the Go build cache

export SKIFF_CACHE_DIR=$work/skiff-cache KO_DOCKER_REPO=$reg/ko KO_DEFAULTBASEIMAGE=$base
export SOURCE_DATE_EPOCH=0 KOCACHE=$work/ko-cache
bump='sed -i "s/bench-[0-9]*/bench-$(date +%s%N)/" '"$app/stamp.go"
skiff1="$skiff build --push --base $base --platform linux/amd64"
skiff2="$skiff build --push --base $base --platform linux/amd64,linux/arm64"
ko1="$KO build --bare --platform linux/amd64 ."
ko2="$KO build --bare --platform linux/amd64,linux/arm64 ."

cd "$app"
$skiff1 >/dev/null; $ko1 >/dev/null   # both warm
hf() { hyperfine --style basic --runs "$RUNS" --warmup 1 "$@"; }
hf --export-json "$work/cold.json" --prepare "$bump" -n skiff "$skiff1" -n ko "$ko1"
hf --export-json "$work/noop.json" -n skiff "$skiff1" -n ko "$ko1"
hf --export-json "$work/two.json" --prepare "$bump" -n skiff-1 "$skiff1" -n skiff-2 "$skiff2" -n ko-1 "$ko1" -n ko-2 "$ko2"

mem() { eval "$bump"; /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
skiff_mem=$(mem $skiff1)
ko_mem=$(mem $ko1)

python3 - "$work" "$skiff_mem" "$ko_mem" <<'PY'
import json, sys
work, skiff_mem, ko_mem = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def means(name):
    return {r["command"]: r["mean"] for r in json.load(open(f"{work}/{name}.json"))["results"]}
cold, noop, two = means("cold"), means("noop"), means("two")
print()
print("| scenario | skiff | ko | skiff/ko | target |")
print("|---|---|---|---|---|")
print(f"| cold build+push (1 platform) | {cold['skiff']:.3f} s | {cold['ko']:.3f} s | {cold['skiff']/cold['ko']:.2f}x | <= 0.8x |")
print(f"| no-op rebuild+push | {noop['skiff']:.3f} s | {noop['ko']:.3f} s | {noop['skiff']/noop['ko']:.2f}x | <= 0.25x |")
print(f"| two-platform cold build+push | {two['skiff-2']:.3f} s | {two['ko-2']:.3f} s | {two['skiff-2']/two['ko-2']:.2f}x | |")
print(f"| two platforms / one platform | {two['skiff-2']/two['skiff-1']:.2f}x | {two['ko-2']/two['ko-1']:.2f}x | | <= 1.4x |")
print(f"| max RSS, cold build+push (1 platform) | {skiff_mem/1024:.0f} MiB | {ko_mem/1024:.0f} MiB | {skiff_mem/ko_mem:.2f}x | |")
PY
