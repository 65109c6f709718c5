#!/usr/bin/env bash
# ci.sh drives skiff's single-node test cluster for CI and for people.
#
#   ci.sh install   install the Debian packages the cluster needs (quick when present)
#   ci.sh build     build or reuse the cached cluster binaries
#   ci.sh up        start the cluster (cleans up a crashed one first)
#   ci.sh env       print `export KUBECONFIG=... SKIFF_TEST_REGISTRY=... SKIFF_TEST_PROMETHEUS=...` lines
#   ci.sh smoke     run the smoke e2e test against the running cluster
#   ci.sh e2e ARGS  run `go test -tags e2e ARGS` in the env of the running cluster,
#                   from the current directory
#   ci.sh logs      print the last lines of every component's log (SKIFF_LOG_LINES=0 for all)
#   ci.sh down      stop the cluster and undo its changes to the machine
#   ci.sh all       install, up, smoke, print logs on failure, and always down
#
# State: $SKIFF_CLUSTER_STATE (default /var/lib/skiff-cluster); logs in its
# logs/ dir, kept after down. Binaries: $SKIFF_CLUSTER_CACHE (default
# /var/cache/skiff-cluster), kept between runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ipset: kube-router, the NetworkPolicy enforcer, keeps its address sets with it.
packages=(docker-registry containerd runc containernetworking-plugins iptables conntrack iproute2 util-linux ipset prometheus)

cluster() {
	(cd "$here" && go run . "$@")
}

cmd_install() {
	local missing=() p
	for p in "${packages[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		echo "ci.sh: packages already installed: ${packages[*]}" >&2
		return 0
	fi
	echo "ci.sh: installing ${missing[*]}" >&2
	# The cluster starts containerd, the registry and Prometheus itself:
	# keep the packages' own services from starting (and taking port 5000
	# and 9090).
	local policy=/usr/sbin/policy-rc.d added_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		added_policy=1
	fi
	local rc=0
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
	if [[ -n $added_policy ]]; then rm -f "$policy"; fi
	return "$rc"
}

cmd_e2e() {
	eval "$(cluster env)"
	go test -tags e2e -count=1 "$@"
}

cmd_smoke() {
	eval "$(cluster env)"
	(cd "$here" && go test -tags e2e -count=1 -timeout 15m -run 'TestSmoke' -v .)
}

cmd_logs() {
	cluster -lines "${SKIFF_LOG_LINES:-300}" logs
}

cmd_all() {
	cmd_install
	local rc=0
	cluster up >/dev/null || rc=$?
	if ((rc == 0)); then
		cmd_smoke || rc=$?
	fi
	if ((rc != 0)); then
		echo "ci.sh: failed (exit $rc); component logs follow" >&2
		cmd_logs || true
	fi
	if ! cluster down && ((rc == 0)); then rc=1; fi
	return "$rc"
}

case "${1:-}" in
install) cmd_install ;;
build) cluster build ;;
up) cluster up ;;
env) cluster env ;;
smoke) cmd_smoke ;;
e2e) shift; cmd_e2e "$@" ;;
logs) cmd_logs ;;
down) cluster down ;;
status) cluster status ;;
all) cmd_all ;;
*)
	sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
