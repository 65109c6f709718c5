#!/usr/bin/env bash
# Benchmark: `skiff dev --local`, from the write of an edit of a function's
# greeting to the first HTTP 200 with the new text, median and p90 over
# EDITS edits, for a Go, a Node.js and a Python HTTP function from skiff's
# templates; beside it, the floor of each: the rebuild alone (go build of
# the same change; nothing for Node.js and Python) measured the same way.
# The poll waits 5 ms between curls: a poll that spins takes one of the
# machine's two cores from the build it times (+0.1 s on a Go edit).
#
#   testscripts/bench/dev.sh                 # from the repository root
#   EDITS=20 LANGS="go node python" testscripts/bench/dev.sh
#
# Needs: go, node, python3, curl.
set -euo pipefail

EDITS=${EDITS:-20}
LANGS=${LANGS:-go node python}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
devpid=""
cleanup() {
  if [ -n "$devpid" ]; then kill -INT "$devpid" 2>/dev/null || true; wait "$devpid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
skiff=$work/skiff
now() { date +%s%N; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stats() { # name, then milliseconds on stdin
  sort -n | awk -v name="$1" '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; p90=a[int(NR*0.9+0.5)]; printf "| %s | %d | %.0f ms | %.0f ms |\n", name, NR, p50, p90}'
}

echo "| scenario | edits | p50 | p90 |"
echo "|---|---|---|---|"
for lang in $LANGS; do
  proj=$work/$lang
  "$skiff" init "$proj" --kind function --lang "$lang" --name hello --non-interactive >/dev/null 2>&1
  sed -i "s/^  - name: hello$/  - name: hello\n    port: $port/" "$proj/skiff.yaml"
  case $lang in
    go) main=$proj/hello/main.go ;;
    node) main=$proj/hello/index.js ;;
    python) main=$proj/hello/main.py ;;
  esac
  (cd "$proj" && exec "$skiff" dev --local -o json >"$work/$lang.out" 2>"$work/$lang.err") &
  devpid=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$port/?name=Ada" >/dev/null 2>&1 && break; sleep 0.05; done
  prev=Hello
  : >"$work/$lang.ms"
  for i in $(seq "$EDITS"); do
    next=Edit$i
    t0=$(now)
    sed -i "s/\"$prev\"/\"$next\"/g" "$main"
    until curl -fs "http://127.0.0.1:$port/?name=Ada" 2>/dev/null | grep -q "$next, Ada"; do sleep 0.005; done
    echo $(( ($(now) - t0) / 1000000 )) >>"$work/$lang.ms"
    prev=$next
  done
  stats "dev --local, $lang: edit to new answer" <"$work/$lang.ms"
  kill -INT "$devpid"; wait "$devpid" || true; devpid=""
  if [ "$lang" = go ]; then
    : >"$work/gobuild.ms"
    for i in $(seq "$EDITS"); do
      sed -i "s/\"$prev\"/\"Build$i\"/g" "$main"; prev=Build$i
      t0=$(now); (cd "$proj/hello" && go build -ldflags="-s -w" -o "$work/hello.bin" .); echo $(( ($(now) - t0) / 1000000 )) >>"$work/gobuild.ms"
    done
    stats "floor: go build -ldflags='-s -w' of the same change" <"$work/gobuild.ms"
  fi
done
