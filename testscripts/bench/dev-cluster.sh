#!/usr/bin/env bash
# Benchmark: `skiff dev` on the test cluster, from the write of an edit of a
# Go function's greeting to the first HTTP 200 with the new text through
# dev's own port-forward, p50 and p90 over EDITS edits, with where the
# time went (median of the build, push and deploy steps dev reports in its
# ready events). Beside it, what a user does without dev: the same edit
# of a copy of the project, then `skiff deploy` (with Helm's wait) and
# `skiff invoke` (a new port-forward), timed until invoke shows the new
# text. The two alternate edit by edit, so both see the same load on the
# machine.
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   EDITS=20 testscripts/bench/dev-cluster.sh        # from the repository root
#
# Needs: the test cluster, curl, python3.
set -euo pipefail

EDITS=${EDITS:-20}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
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
now() { date +%s%N; }
stats() { # name, then milliseconds on stdin
  sort -n | awk -v name="$1" '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; p90=a[int(NR*0.9+0.5)]; printf "| %s | %d | %.0f ms | %.0f ms |\n", name, NR, p50, p90}'
}

proj=$work/bench
"$skiff" init "$proj" --kind function --lang go --name hello --registry "$SKIFF_TEST_REGISTRY/bench" --non-interactive >/dev/null 2>&1
cp -r "$proj" "$work/plain"
main=$proj/hello/main.go plain=$work/plain/hello/main.go
(cd "$work/plain" && "$skiff" deploy -n bench-deploy --timeout 3m >/dev/null 2>&1)
cd "$proj"

echo "| scenario | edits | p50 | p90 |"
echo "|---|---|---|---|"
"$skiff" dev -n bench-dev -o json >"$work/dev.out" 2>"$work/dev.err" &
devpid=$!
for _ in $(seq 1200); do grep -qs '"event":"ready"' "$work/dev.err" && break; sleep 0.1; done
url=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l) if l.startswith("{") else {}
    if e.get("event") == "watching": print(e["url"]); break' "$work/dev.err")
prev=Hello
: >"$work/dev.ms"
: >"$work/deploy.ms"
for i in $(seq "$EDITS"); do
  next=Edit$i
  t0=$(now)
  sed -i "s/\"$prev\"/\"$next\"/g" "$main"
  until curl -fs "$url/?name=Ada" 2>/dev/null | grep -q "$next, Ada"; do :; done
  echo $(( ($(now) - t0) / 1000000 )) >>"$work/dev.ms"
  # The cycle's ready event comes once the old pod is gone: wait for it, so
  # the next edit starts from a settled release.
  for _ in $(seq 600); do [ "$(grep -c '"event":"ready"' "$work/dev.err")" -gt "$i" ] && break; sleep 0.05; done

  t0=$(now)
  sed -i "s/\"$prev\"/\"$next\"/g" "$plain"
  (cd "$work/plain" && "$skiff" deploy -n bench-deploy --timeout 3m >/dev/null 2>&1 &&
    until "$skiff" invoke hello -n bench-deploy --path "/?name=Ada" 2>/dev/null | grep -q "$next, Ada"; do :; done)
  echo $(( ($(now) - t0) / 1000000 )) >>"$work/deploy.ms"
  prev=$next
done
kill -INT "$devpid"; wait "$devpid" || true; devpid=""
stats "skiff dev, go: edit to new answer through dev's forward" <"$work/dev.ms"
stats "edit, then skiff deploy + skiff invoke, go: until invoke shows the new text" <"$work/deploy.ms"

python3 - "$work/dev.err" <<'PY'
import json, statistics, sys
steps = {}
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("event") == "ready" and e.get("revision", 0) > 1:
        for k, v in e.get("steps", {}).items():
            steps.setdefault(k, []).append(v)
        steps.setdefault("cycle", []).append(e["seconds"])
print()
print("median per dev cycle: " + ", ".join(f"{k} {statistics.median(v)*1000:.0f} ms" for k, v in sorted(steps.items())))
PY
