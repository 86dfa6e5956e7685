#!/usr/bin/env bash
# Runs etcd 3.4.23's own end-to-end suite (tests/e2e, from Debian's etcd source
# package) with etsd as the `etcd` binary and Debian's etcdctl, unchanged flags.
# The yardstick of issue 12: how many of the tests that pass against etcd pass
# against etsd. Not part of `npm test` (it takes long); run it by hand:
#   bash scripts/etcd-e2e.sh [--target etcd|etsd] [--run REGEXP] [--timeout 60m]
# Prints each test's PASS/FAIL line and the counts; the whole log goes to
# bench/results/e2e-<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
target=etsd; run=.; timeout=90m
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --run) run=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cache="${ETSD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/etsd}"
# The benchmark build script fetches the source package and the Go libraries it needs.
bash scripts/build-etcd-benchmark.sh >/dev/null
src="$cache/benchmark/gopath/src/go.etcd.io/etcd"
e2e="$cache/e2e.test"
if [ ! -x "$e2e" ]; then
  echo "building etcd's e2e tests (GOPATH mode, Debian's /usr/share/gocode)" >&2
  (cd "$src" && env GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
    GOPATH="$cache/benchmark/gopath:/usr/share/gocode" GOCACHE="$cache/benchmark/go-build" \
    go test -c -o "$e2e.tmp" ./tests/e2e >&2)
  mv "$e2e.tmp" "$e2e"
fi
[ -f dist/src/cli/etsd.js ] || npm run build
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
if [ "$target" = etsd ]; then
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$(command -v node)" "$(pwd)/dist/src/cli/etsd.js" >"$bindir/etcd"
  chmod +x "$bindir/etcd"
else
  ln -s /usr/bin/etcd "$bindir/etcd"
fi
ln -s /usr/bin/etcdctl "$bindir/etcdctl"
mkdir -p bench/results
log="$(pwd)/bench/results/e2e-$target.log"
(cd "$src/tests/e2e" && "$e2e" -test.v -test.timeout "$timeout" -test.run "$run" \
  -bin-dir "$bindir" -cert-dir "$src/integration/fixtures" >"$log" 2>&1) || true
grep -E '^--- (PASS|FAIL|SKIP)' "$log" || true
echo "target $target: $(grep -c '^--- PASS' "$log" || true) passed, $(grep -c '^--- FAIL' "$log" || true) failed, $(grep -c '^--- SKIP' "$log" || true) skipped (log: $log)"
