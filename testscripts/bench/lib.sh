# shellcheck shell=bash
# Shared by the benchmarks; source it after setting root (and work).

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

# checkouts sets the checkouts measured side by side: sides (after, this
# one; with BEFORE, also before, that commit) and src_after/src_before,
# their trees (before's extracted into $work/src-before).
# shellcheck disable=SC2034 # sides and src_* are what it sets for the caller
checkouts() {
  sides=(after)
  src_after=$root
  if [ -n "${BEFORE:-}" ]; then
    sides=(before after)
    src_before=${work:?}/src-before
    mkdir -p "$src_before"
    git -C "$root" archive "$BEFORE" | tar -x -C "$src_before"
  fi
}
