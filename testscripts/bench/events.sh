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
#   BEFORE=main HANDLERS="go node" RATE=1000 testscripts/bench/events.sh
#
# Without HANDLERS the handler is a Go one in eventload's process that
# answers at once, and an event counts from the publish call to the handler
# entered. With HANDLERS, each language's CloudEvents function template
# (skiff init --template cloudevents, built as a user would: go build, npm
# install) runs as its own process and answers each event with a reply the
# relay stores: an event counts from the publish call to its reply stored.
# With BEFORE (a commit), the relay and the templates of that commit run
# too, side by side: each run measures the commit's ("before") and then
# this checkout's ("after"), each with its own template's handler.
# FLAGS go to eventload (e.g. -default-client, -concurrency 32).
#
# Needs Go; with node in HANDLERS, node and npm; with BEFORE, git.
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-100} N=${N:-2000} BURST=${BURST:-20000} HANDLERS=${HANDLERS:-} FLAGS=${FLAGS:-}
BEFORE=${BEFORE:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
checkouts
for side in "${sides[@]}"; do
  src=src_$side
  go build -C "${!src}" -o "$work/eventload-$side" ./testscripts/bench/eventload
done

measure() { # label, side, eventload flags...
  local label=$1 side=$2; shift 2
  # shellcheck disable=SC2086
  "$work/eventload-$side" -rate "$RATE" -n "$N" -burst "$BURST" $FLAGS "$@" | sed "s/^| /| $label: /" >>"$work/out.md"
}

if [ -z "$HANDLERS" ]; then
  for _ in $(seq "$RUNS"); do
    for side in "${sides[@]}"; do
      label="in-process Go handler"
      [ -n "$BEFORE" ] && label="$label, $side"
      measure "$label" "$side"
    done
  done
else
  port=18480
  for lang in $HANDLERS; do
    # One handler process per side, each built from its side's template.
    for side in "${sides[@]}"; do
      src=src_$side
      go build -C "${!src}" -o "$work/skiff-$side" ./cmd/skiff
      dir=$work/fn-$lang-$side
      "$work/skiff-$side" init "$dir" --kind function --lang "$lang" --template cloudevents --name "fn$lang" --non-interactive >/dev/null 2>&1
      app=$dir/fn$lang
      case $lang in
        go) (cd "$app" && go build -o "$work/handler-go-$side" .); cmd=("$work/handler-go-$side") ;;
        node) (cd "$app" && npm install --no-audit --no-fund --silent >/dev/null); cmd=(node "$app/index.js") ;;
        *) echo "bench: HANDLERS takes go and node, not $lang" >&2; exit 2 ;;
      esac
      port=$((port + 1))
      PORT=$port REPLY_TYPE=bench.reply "${cmd[@]}" >/dev/null 2>&1 &
      pids+=($!)
      declare "port_$side=$port"
      for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1 # polling a starting process: no event to wait on
      done
    done
    for _ in $(seq "$RUNS"); do
      for side in "${sides[@]}"; do
        label="$lang template"
        [ -n "$BEFORE" ] && label="$label, $side"
        p=port_$side
        measure "$label" "$side" -target "http://127.0.0.1:${!p}/" -reply-type bench.reply
      done
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    pids=()
  done
fi

echo "| run | n | p50 | p90 | p99 | max |"
echo "|---|---|---|---|---|---|"
grep -E '(HTTP POST|publish →)' "$work/out.md" | sort
echo
grep -E 'events published' "$work/out.md"
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
