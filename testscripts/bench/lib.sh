# shellcheck shell=bash
# Shared by the cluster benchmarks; source it after setting root.

# use_host_bases PROJECT_DIR LANGS...: when LANGS hold node, typescript or
# python, point the project's bases at images made from the host's node
# and python3 (testscripts/bench/hostbases), or at BASES=REPO when set
# (holding node:20 and python:3.11): the machines reach no other registry.
use_host_bases() {
  local proj=$1; shift
  case " $* " in *" node "*|*" typescript "*|*" python "*)
    BASES=${BASES:-$(go run -C "$root" ./testscripts/bench/hostbases "$SKIFF_TEST_REGISTRY")} ;;
  esac
  [ -n "${BASES:-}" ] || return 0
  python3 - "$proj/skiff.yaml" "$BASES" <<'PY'
import sys
path, bases = sys.argv[1], sys.argv[2]
text = open(path).read().replace("workloads:\n", f"build:\n  base: {{node: {bases}/node:20, typescript: {bases}/node:20, python: {bases}/python:3.11}}\nworkloads:\n", 1)
open(path, "w").write(text)
PY
}
