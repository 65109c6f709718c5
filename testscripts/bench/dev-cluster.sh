#!/usr/bin/env bash
# Benchmark: `skiff dev` on the test cluster, from the write of an edit of a
# function's greeting to the first HTTP 200 with the new text through dev's
# own port-forward, p50 and p90 over EDITS edits, with where the time went
# (the median of the steps dev reports in its ready events).
#
#   - dev with live updates (a skiff-relay image built from this checkout,
#     hack/relayimage): a Go, a Node.js and a Python function;
#   - dev --no-sync (every edit a new image and a rollout), Go;
#   - what a user does without dev, Go: the same edit of a copy of the
#     project, then `skiff deploy` (with Helm's wait) and `skiff invoke` (a
#     new port-forward), timed until invoke shows the new text.
# The last two alternate edit by edit, so both see the same load.
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   EDITS=20 testscripts/bench/dev-cluster.sh        # from the repository root
#
# LANGS picks the languages of the live-update runs (default: go node
# python); NOSYNC=0 leaves out the --no-sync and deploy runs.
#
# Needs: the test cluster, curl, python3, node (the Node.js and Python
# functions run on bases made from the host's node and python3; BASES=REPO
# names others).
set -euo pipefail

EDITS=${EDITS:-20} LANGS=${LANGS:-go node python} NOSYNC=${NOSYNC:-1}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
devpid=""
cleanup() {
  if [ -n "$devpid" ]; then kill -INT "$devpid" 2>/dev/null || true; wait "$devpid" 2>/dev/null || true; fi
  "$work/skiff" delete --all -n bench-deploy >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
skiff=$work/skiff
relay=$(go run -C "$root" ./hack/relayimage --registry "$SKIFF_TEST_REGISTRY/bench" --tag bench)
now() { date +%s%N; }
stats() { # name, then milliseconds on stdin
  sort -n | awk -v name="$1" '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; p90=a[int(NR*0.9+0.5)]; printf "| %s | %d | %.0f ms | %.0f ms |\n", name, NR, p50, p90}'
}
# steps FILE: the median of each step of dev's ready events after the first.
steps() {
  python3 - "$1" <<'PY'
import json, statistics, sys
steps, first = {}, True
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("event") != "ready":
        continue
    if first:
        first = False
        continue
    for k, v in e.get("detail", {}).get("steps", {}).items():
        steps.setdefault(k, []).append(v)
    steps.setdefault("cycle", []).append(e["seconds"])
print(", ".join(f"{k} {statistics.median(v)*1000:.0f} ms" for k, v in sorted(steps.items())))
PY
}

# project LANG: a new project with one function, hello, in $work/LANG.
project() {
  "$skiff" init "$work/$1" --kind function --lang "$1" --name hello --registry "$SKIFF_TEST_REGISTRY/bench" --non-interactive >/dev/null 2>&1
  use_host_bases "$work/$1" "$1"
}
# source_of LANG: the file holding the greeting.
source_of() {
  case $1 in go) echo main.go ;; node) echo index.js ;; python) echo main.py ;; esac
}

# start_dev DIR NAMESPACE ARGS...: skiff dev in DIR; sets url.
start_dev() {
  local dir=$1 ns=$2; shift 2
  (cd "$dir" && exec "$skiff" dev -n "$ns" -o json "$@") >"$dir.out" 2>"$dir.err" &
  devpid=$!
  for _ in $(seq 1200); do grep -qs '"event":"ready"' "$dir.err" && break; sleep 0.1; done
  url=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l) if l.startswith("{") else {}
    if e.get("event") == "watching": print(e["detail"]["url"]); break' "$dir.err")
  [ -n "$url" ] || { cat "$dir.err" >&2; exit 1; }
}
stop_dev() { kill -INT "$devpid"; wait "$devpid" || true; devpid=""; }

# edit_dev DIR LANG I PREV NEXT: one edit, timed into DIR.ms; waits for the
# cycle's ready event, so the next edit starts from a settled release.
edit_dev() {
  local dir=$1 lang=$2 i=$3 prev=$4 next=$5 t0
  t0=$(now)
  sed -i "s/\"$prev\"/\"$next\"/g" "$dir/hello/$(source_of "$lang")"
  until curl -fs "$url/?name=Ada" 2>/dev/null | grep -q "$next, Ada"; do :; done
  echo $(( ($(now) - t0) / 1000000 )) >>"$dir.ms"
  for _ in $(seq 600); do [ "$(grep -c '"event":"ready"' "$dir.err")" -gt "$i" ] && break; sleep 0.05; done
}

echo "| scenario | edits | p50 | p90 |"
echo "|---|---|---|---|"
summary=()
for lang in $LANGS; do
  project "$lang"
  : >"$work/$lang.ms"
  export SKIFF_RELAY_IMAGE=$relay
  start_dev "$work/$lang" "bench-dev-$lang"
  prev=Hello
  for i in $(seq "$EDITS"); do edit_dev "$work/$lang" "$lang" "$i" "$prev" "Edit$i"; prev=Edit$i; done
  stop_dev
  unset SKIFF_RELAY_IMAGE
  stats "skiff dev, live updates, $lang: edit to new answer through dev's forward" <"$work/$lang.ms"
  summary+=("live updates, $lang: $(steps "$work/$lang.err")")
done

# Go without live updates, beside deploy + invoke.
if [ "$NOSYNC" = 0 ]; then
  echo
  for s in "${summary[@]}"; do echo "median per dev cycle, $s"; done
  exit 0
fi
[ -d "$work/go" ] || { project go; sed -i 's/"Hello"/"Edit'"$EDITS"'"/' "$work/go/hello/main.go"; }
cp -r "$work/go" "$work/plain"
rm -f "$work/go.ms" "$work/go.err"
(cd "$work/plain" && "$skiff" deploy -n bench-deploy --timeout 3m >/dev/null 2>&1)
start_dev "$work/go" bench-dev-go --no-sync
: >"$work/go.ms"
: >"$work/deploy.ms"
prev=Edit$EDITS
for i in $(seq "$EDITS"); do
  next=Again$i
  edit_dev "$work/go" go "$i" "$prev" "$next"
  t0=$(now)
  sed -i "s/\"$prev\"/\"$next\"/g" "$work/plain/hello/main.go"
  (cd "$work/plain" && "$skiff" deploy -n bench-deploy --timeout 3m >/dev/null 2>&1 &&
    until "$skiff" invoke hello -n bench-deploy --path "/?name=Ada" 2>/dev/null | grep -q "$next, Ada"; do :; done)
  echo $(( ($(now) - t0) / 1000000 )) >>"$work/deploy.ms"
  prev=$next
done
stop_dev
stats "skiff dev --no-sync, go: edit to new answer through dev's forward" <"$work/go.ms"
stats "edit, then skiff deploy + skiff invoke, go: until invoke shows the new text" <"$work/deploy.ms"
summary+=("--no-sync, go: $(steps "$work/go.err")")

echo
for s in "${summary[@]}"; do echo "median per dev cycle, $s"; done
