#!/usr/bin/env bash
# Benchmark: events on the test cluster (KEDA, nats-server): a Go
# CloudEvents function with an event trigger and `scale: {min: 0, idle:
# 5s}`, its relay image built from this checkout (hack/relayimage). WAKES
# times the first event at zero pods until its reply is stored (the
# handler answered); then N events at RATE per second into the one pod of
# a second such function without scale,
# each from the event stored to its reply stored; then, that second
# function's Deployment scaled to zero, BURST events stored, one pod again,
# and the events per second it handles them at (testscripts/bench/eventwake).
#
# eventwake publishes to the bus's Service address from this machine
# (the node reaches Services, as a publisher in the cluster would); with
# PORT_FORWARD=1 through a port-forward to the bus's pod instead, as skiff
# itself does: that costs the API server, the kubelet and containerd
# about 0.6 ms of CPU an event, on the cores the pod runs on.
#
# With FLOOR=1 the burst is handled not by the pod but by a bare consumer
# in eventwake (eventwake -floor: no HTTP, no handler, each reply stored
# before its ack): nats-server's part, the floor of the pod's pace.
#
# FN_LOG_LEVEL sets the second function's LOG_LEVEL (the template logs
# a line for an event in a sampled trace at info, its default, and the
# "received event" line of every event at debug).
#
# With CPU=1, the CPU time each command on this machine (the cluster's
# processes run on it: nats-server, the relay, the handler, containerd,
# the kubelet) used during the warm events and during the burst (from the
# pod's first delivery to its last ack), from /proc, the largest first,
# in seconds and µs an event, and how busy the machine was (eventwake
# -cpu): what the events cost and where.
#
# With BEFORE (a commit), that commit's skiff, templates and relay are
# deployed too, as a second project in a namespace of its own, and each of
# RUNS rounds runs eventwake on the commit's ("before") and then on this
# checkout's ("after"): side by side on the same cluster, interleaved.
#
# RELAY_ENV (NAME=value words, e.g. "GODEBUG=gctrace=1 GOGC=200") is set
# on the "after" side's warm relay (kubectl set env).
#
# With PPROF=dir, the "after" side's warm relay runs with
# SKIFF_RELAY_PPROF=true and a CPU profile of it is taken while it
# delivers the N events at RATE (for PPROF_SECONDS, default 8: keep it
# below N/RATE, e.g. N=10000 RATE=1000, as the pod goes away for the
# burst), written to dir/relay-<run>.pprof (go tool pprof).
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   WAKES=10 testscripts/bench/events-cluster.sh        # from the repository root
#   BEFORE=main RUNS=3 WAKES=0 RATE=1000 N=3000 BURST=10000 testscripts/bench/events-cluster.sh
set -euo pipefail

WAKES=${WAKES:-10} RATE=${RATE:-100} N=${N:-2000} BURST=${BURST:-5000} FN_LOG_LEVEL=${FN_LOG_LEVEL:-} CPU=${CPU:-}
PORT_FORWARD=${PORT_FORWARD:-} FLOOR=${FLOOR:-} BEFORE=${BEFORE:-} RUNS=${RUNS:-1} PPROF=${PPROF:-} PPROF_SECONDS=${PPROF_SECONDS:-8} RELAY_ENV=${RELAY_ENV:-}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
# The cluster's bus runs with accounts: skiff (and eventwake) connect as the
# test user, and deploy mints the relays' users with the account's key.
export SKIFF_NATS_CREDS=${SKIFF_TEST_NATS_CREDS:-} SKIFF_NATS_SIGNING_KEY=${SKIFF_TEST_NATS_SIGNING_KEY:-}

# shellcheck source=testscripts/bench/lib.sh
. "$root/testscripts/bench/lib.sh"
checkouts
cleanup() {
  for side in "${sides[@]}"; do
    (cd "$work/shop-$side" 2>/dev/null && "$work/skiff-$side" delete --all >/dev/null 2>&1) || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/eventwake" ./testscripts/bench/eventwake

# deploy builds a side's skiff and relay image and deploys its project:
# thumbs (scales from zero) and warm (always one pod), in namespace
# bench-events[-side] on stream bench_events[_side].
deploy() {
  local side=$1 src=src_$1 suffix=""
  [ -n "$BEFORE" ] && suffix=$side
  local ns=bench-events${suffix:+-$suffix} stream=bench_events${suffix:+_$suffix}
  local skiff=$work/skiff-$side proj=$work/shop-$side relay
  go build -C "${!src}" -o "$skiff" ./cmd/skiff
  relay=$(go run -C "${!src}" ./hack/relayimage --registry "$SKIFF_TEST_REGISTRY/bench" --tag "bench-$side")
  "$skiff" init "$proj" --kind function --lang go --template cloudevents --name thumbs \
    --registry "$SKIFF_TEST_REGISTRY/bench-events-$side" -n "$ns" --non-interactive >/dev/null 2>&1
  python3 - "$proj/skiff.yaml" "$relay" "$stream" <<'PY'
import sys
path, relay, stream = sys.argv[1:]
text = open(path).read()
text = text.replace("workloads:\n", f"events:\n  bus: nats://nats.nats.svc.cluster.local:4222\n  stream: {stream}\n  relayImage: {relay}\nworkloads:\n", 1)
text = text.replace("  - name: thumbs\n", "  - name: thumbs\n    scale: {min: 0, max: 1, idle: 5s}\n    triggers: [{event: com.example.image.uploaded}]\n", 1)
open(path, "w").write(text)
PY
  # warm: always one pod (no scale), for the in-pod delivery at a fixed rate.
  (cd "$proj" && "$skiff" add warm --kind function --lang go --template cloudevents >/dev/null 2>&1)
  python3 - "$proj/skiff.yaml" "$FN_LOG_LEVEL" <<'PY'
import sys
path, level = sys.argv[1:]
text = open(path).read()
env = f"    env: {{LOG_LEVEL: {level}}}\n" if level else ""
text = text.replace("  - name: warm\n", "  - name: warm\n    triggers: [{event: com.example.image.resized}]\n" + env, 1)
open(path, "w").write(text)
PY
  (cd "$proj" && "$skiff" deploy --timeout 5m >/dev/null)
  local env=()
  [ -n "$PPROF" ] && env+=(SKIFF_RELAY_PPROF=true)
  # shellcheck disable=SC2206 # RELAY_ENV is a list of NAME=value words
  [ -n "$RELAY_ENV" ] && env+=($RELAY_ENV)
  if [ ${#env[@]} -gt 0 ] && [ "$side" = after ]; then
    kubectl -n "$ns" set env deployment/warm -c skiff-relay "${env[@]}" >/dev/null
    kubectl -n "$ns" rollout status deployment/warm --timeout 2m >/dev/null
  fi
  declare -g "ns_$side=$ns" "stream_$side=$stream"
}
for side in "${sides[@]}"; do deploy "$side"; done
bus=()
if [ -z "$PORT_FORWARD" ]; then
  bus=(-bus "nats://$(kubectl -n nats get service nats -o jsonpath='{.spec.clusterIP}'):4222")
fi

# measure runs eventwake on a side's project (and, with CPU, prints what
# each command used meanwhile).
measure() {
  local side=$1 ns=ns_$1 stream=stream_$1
  echo
  [ -n "$BEFORE" ] && echo "### $side"
  local fwd="" prof="" curlpid=""
  if [ -n "$PPROF" ] && [ "$side" = after ]; then
    mkdir -p "$PPROF"
    run=$((${run:-0} + 1)) prof=$PPROF/relay-$run.pprof
    # The warm pod's admin port (9091 unless the chart says otherwise).
    kubectl -n "${!ns}" port-forward deployment/warm 19091:9091 >/dev/null 2>&1 &
    fwd=$!
    for _ in $(seq 50); do curl -fs http://127.0.0.1:19091/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:19091/debug/pprof/profile?seconds=$PPROF_SECONDS" -o "$prof" &
    curlpid=$!
  fi
  echo "| scenario | n | p50 | p90 | p99 | max |"
  echo "|---|---|---|---|---|---|"
  "$work/eventwake" "${bus[@]}" -n "${!ns}" -release shop-thumbs -stream "${!stream}" -warm-type com.example.image.resized -warm-deployment warm \
    -wakes "$WAKES" -rate "$RATE" -events "$N" -burst "$BURST" ${CPU:+-cpu} ${FLOOR:+-floor} 2>"$work/eventwake.log" ||
    { cat "$work/eventwake.log" >&2; exit 1; }
  if [ -n "$fwd" ]; then
    wait "$curlpid" || echo "no relay profile (the pod went away before $PPROF_SECONDS s?)" >&2
    kill "$fwd" 2>/dev/null && wait "$fwd" 2>/dev/null || true
    echo "relay CPU profile of the warm events: $prof"
  fi
}
for _ in $(seq "$RUNS"); do
  for side in "${sides[@]}"; do measure "$side"; done
done
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
