#!/usr/bin/env bash
# Benchmark: the events relay on loopback (testscripts/bench/eventload):
# a real nats-server with JetStream on a file store, the relay's
# Dispatcher, a Go handler that answers at once. RUNS times: N events at
# RATE per second, from the publish call to the handler being entered,
# beside the same events POSTed straight to the handler (the floor); then
# BURST events published at once, delivered per second, lost, duplicated.
#
#   RUNS=3 testscripts/bench/events.sh        # from the repository root
#
# Needs only Go. Not yet measured here: the relay in a pod on the cluster,
# and the first event to a function at zero pods (issue 12's rest).
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-100} N=${N:-2000} BURST=${BURST:-20000}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -C "$root" -o "$work/eventload" ./testscripts/bench/eventload

echo "| run | n | p50 | p90 | p99 | max |"
echo "|---|---|---|---|---|---|"
for _ in $(seq "$RUNS"); do
  "$work/eventload" -rate "$RATE" -n "$N" -burst "$BURST" >>"$work/out.md"
done
grep -E '^\| (HTTP|publish)' "$work/out.md" | sort
echo
grep -E '^\| [0-9]+ events published' "$work/out.md"
