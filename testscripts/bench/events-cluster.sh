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
# FN_LOG_LEVEL sets the second function's LOG_LEVEL (the template logs two
# lines an event at info, its default).
#
#   testscripts/cluster/ci.sh up && eval "$(testscripts/cluster/ci.sh env)"
#   WAKES=10 testscripts/bench/events-cluster.sh        # from the repository root
set -euo pipefail

WAKES=${WAKES:-10} RATE=${RATE:-100} N=${N:-2000} BURST=${BURST:-5000} FN_LOG_LEVEL=${FN_LOG_LEVEL:-}
: "${KUBECONFIG:?run testscripts/cluster/ci.sh up and eval its env first}"
: "${SKIFF_TEST_REGISTRY:?run testscripts/cluster/ci.sh up and eval its env first}"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
export SKIFF_CACHE_DIR=$work/cache SKIFF_CONFIG_DIR=$work/config
# The cluster's bus runs with accounts: skiff (and eventwake) connect as the
# test user, and deploy mints the relays' users with the account's key.
export SKIFF_NATS_CREDS=${SKIFF_TEST_NATS_CREDS:-} SKIFF_NATS_SIGNING_KEY=${SKIFF_TEST_NATS_SIGNING_KEY:-}
ns=bench-events stream=bench_events
cleanup() {
  (cd "$work/shop" 2>/dev/null && "$work/skiff" delete --all >/dev/null 2>&1) || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
go build -C "$root" -o "$work/eventwake" ./testscripts/bench/eventwake
relay=$(go run -C "$root" ./hack/relayimage --registry "$SKIFF_TEST_REGISTRY/bench" --tag bench)
skiff=$work/skiff
proj=$work/shop
"$skiff" init "$proj" --kind function --lang go --template cloudevents --name thumbs \
  --registry "$SKIFF_TEST_REGISTRY/bench-events" -n "$ns" --non-interactive >/dev/null 2>&1
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

echo "| scenario | n | p50 | p90 | p99 | max |"
echo "|---|---|---|---|---|---|"
"$work/eventwake" -n "$ns" -release shop-thumbs -stream "$stream" -warm-type com.example.image.resized -warm-deployment warm -wakes "$WAKES" -rate "$RATE" -events "$N" -burst "$BURST" 2>"$work/eventwake.log" ||
  { cat "$work/eventwake.log" >&2; exit 1; }
