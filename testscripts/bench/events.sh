#!/usr/bin/env bash
# Benchmark: the events relay on loopback (testscripts/bench/eventload):
# a real nats-server with JetStream on a file store, the relay's
# Dispatcher, and a handler. RUNS times: N events at RATE per second, timed
# per event, beside the same events POSTed straight to the handler (the
# floor); then BURST events published at once, delivered per second, lost,
# duplicated.
#
#   RUNS=3 testscripts/bench/events.sh        # from the repository root
#   HANDLERS="go node" RATE=1000 testscripts/bench/events.sh
#
# Without HANDLERS the handler is a Go one in eventload's process that
# answers at once, and an event counts from the publish call to the handler
# entered. With HANDLERS, each language's CloudEvents function template
# (skiff init --template cloudevents, built as a user would: go build, npm
# install) runs as its own process and answers each event with a reply the
# relay stores: an event counts from the publish call to its reply stored.
# FLAGS go to eventload (e.g. -default-client, -concurrency 32).
#
# Needs Go; with node in HANDLERS, node and npm.
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-100} N=${N:-2000} BURST=${BURST:-20000} HANDLERS=${HANDLERS:-} FLAGS=${FLAGS:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
go build -C "$root" -o "$work/eventload" ./testscripts/bench/eventload

measure() { # label, eventload flags...
  local label=$1; shift
  for _ in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    "$work/eventload" -rate "$RATE" -n "$N" -burst "$BURST" $FLAGS "$@" | sed "s/^| /| $label: /" >>"$work/out.md"
  done
}

if [ -z "$HANDLERS" ]; then
  measure "in-process Go handler"
else
  go build -C "$root" -o "$work/skiff" ./cmd/skiff
  port=18480
  for lang in $HANDLERS; do
    dir=$work/fn-$lang
    "$work/skiff" init "$dir" --kind function --lang "$lang" --template cloudevents --name "fn$lang" --non-interactive >/dev/null 2>&1
    app=$dir/fn$lang
    case $lang in
      go) (cd "$app" && go build -o "$work/handler-go" .); cmd=("$work/handler-go") ;;
      node) (cd "$app" && npm install --no-audit --no-fund --silent >/dev/null); cmd=(node "$app/index.js") ;;
      *) echo "bench: HANDLERS takes go and node, not $lang" >&2; exit 2 ;;
    esac
    port=$((port + 1))
    PORT=$port REPLY_TYPE=bench.reply "${cmd[@]}" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
    measure "$lang template" -target "http://127.0.0.1:$port/" -reply-type bench.reply
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
fi

echo "| run | n | p50 | p90 | p99 | max |"
echo "|---|---|---|---|---|---|"
grep -E '(HTTP POST|publish →)' "$work/out.md" | sort
echo
grep -E 'events published' "$work/out.md"
