#!/usr/bin/env bash
# Benchmark: skiff dev --local's scale to zero, per language. A project of a
# Go, a Python and a Node.js HTTP function, each `scale: {min: 0, idle: 1s}`,
# run by `skiff dev --local -o json`: the time from start to every workload
# ready (built, waiting for its first request), then ROUNDS times per
# workload a GET that wakes it, timed by the client and by dev's own
# "woken by a request, ready in ..." notice, then the idle stop of all.
#
#   ROUNDS=5 testscripts/bench/devlocal.sh      # from the repository root
#
# Needs go, python3 and node. The Go function's first build fills Go's
# build cache (the one go env GOCACHE names); later runs find it warm.
# The event path (publish -> handler at 100/s) is BenchmarkLocalBusDelivery:
#   go test -run '^$' -bench LocalBusDelivery -benchtime 1x ./internal/dev/
set -euo pipefail

ROUNDS=${ROUNDS:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -C "$root" -o "$work/skiff" ./cmd/skiff
export SKIFF_CONFIG_DIR=$work/config NO_COLOR=1
(cd "$work" && ./skiff init app --kind function --lang go --name gofn --non-interactive >/dev/null 2>&1)
(cd "$work/app" && ../skiff add pyfn --kind function --lang python --non-interactive >/dev/null 2>&1 &&
  ../skiff add nodefn --kind function --lang node --non-interactive >/dev/null 2>&1)
ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r p1 p2 p3 <<<"$ports"
cat >"$work/app/skiff.yaml" <<YAML
apiVersion: skiff.dev/v1alpha1
name: app
workloads:
  - {name: gofn, kind: function, lang: go, path: gofn, port: $p1, scale: {min: 0, idle: 1s}}
  - {name: pyfn, kind: function, lang: python, path: pyfn, port: $p2, scale: {min: 0, idle: 1s}}
  - {name: nodefn, kind: function, lang: node, path: nodefn, port: $p3, scale: {min: 0, idle: 1s}}
YAML
python3 - "$work" "$ROUNDS" "$p1" "$p2" "$p3" <<'PY'
import json, os, signal, statistics, subprocess, sys, time, urllib.request
work, rounds = sys.argv[1], int(sys.argv[2])
ports = dict(zip(["gofn", "pyfn", "nodefn"], map(int, sys.argv[3:6])))
t0 = time.monotonic()
p = subprocess.Popen([work + "/skiff", "dev", "--local", "-o", "json"], cwd=work + "/app",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
def events():
    for line in p.stderr:
        try:
            yield json.loads(line)
        except ValueError:
            pass
ev = events()
def until(ok):
    for e in ev:
        if e.get("event") == "failed":
            sys.exit(f"failed: {e}")
        if ok(e):
            return e
    sys.exit("skiff dev ended")
ready = {}
until(lambda e: e.get("event") == "ready" and ready.setdefault(e["workload"], time.monotonic() - t0) is not None and len(ready) == 3)
print(f"start to all ready: {max(ready.values()):.2f} s ({', '.join(f'{k} {v:.2f} s' for k, v in ready.items())})")
notice = lambda e, s: e.get("event") == "notice" and s in e.get("detail", {}).get("message", "")
client, own = {k: [] for k in ports}, {k: [] for k in ports}
for _ in range(rounds):
    for name, port in ports.items():
        t = time.monotonic()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/?name=x").read()
        client[name].append((time.monotonic() - t) * 1000)
        m = until(lambda e: notice(e, name + ": woken"))["detail"]["message"]
        own[name].append(float(m.rsplit("ready in ", 1)[1].rstrip("ms")))
    stopped = set()
    until(lambda e: notice(e, "stopped after") and stopped.add(e["workload"]) is None and len(stopped) == 3)
p.send_signal(signal.SIGINT)
p.wait()
print("| workload | wakes | GET at zero → answer, median (min–max) | process start → ready, median |")
print("|---|---|---|---|")
for name in ports:
    c = client[name]
    print(f"| {name} | {len(c)} | {statistics.median(c):.1f} ms ({min(c):.1f}–{max(c):.1f}) | {statistics.median(own[name]):.0f} ms |")
PY
