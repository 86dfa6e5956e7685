#!/usr/bin/env bash
# Builds etcd 3.4's own load tool (tools/benchmark) from Debian's etcd source
# package, with Debian's Go and Debian's packaged Go libraries only: no Go
# module proxy, no GitHub. Debian's golang-etcd-server-dev lacks tools/ (its
# build excludes it), so the source package is the one place to get it.
#
# How: a deb-src entry for the running release, `apt-get source etcd`, the
# golang-*-dev packages the source package build-depends on (they install
# under /usr/share/gocode), then a GOPATH-mode build (GO111MODULE=off) with
# GOPATH = <our tree>:/usr/share/gocode, exactly how dh-golang builds etcd.
#
# Prints the binary's path on stdout (everything else goes to stderr).
# Idempotent: a second run with the binary in place returns at once.
# Cache: $ETSD_TOOLS_DIR/benchmark (default ~/.cache/etsd/benchmark).
# Needs root (or sudo) only the first time, for apt.
set -euo pipefail

cache="${ETSD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/etsd}/benchmark"
bin="$cache/benchmark"
stamp="$cache/benchmark.version"

log() { echo "build-etcd-benchmark: $*" >&2; }

if [ -x "$bin" ] && [ -s "$stamp" ] && "$bin" --help >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  log "needs root (or sudo) for apt-get the first time"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# 1. Source lists for the running Debian release (skipped when present).
if ! apt-cache showsrc etcd 2>/dev/null | grep -q '^Package: etcd'; then
  . /etc/os-release
  codename="${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}"
  log "adding a deb-src entry for $codename"
  "${sudo[@]}" tee /etc/apt/sources.list.d/etsd-deb-src.sources >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  "${sudo[@]}" apt-get update -qq
fi

version=$(apt-cache showsrc etcd | sed -n 's/^Version: //p' | sort -V | tail -1)
case "$version" in
  3.4.*) ;;
  *) log "Debian's etcd source here is $version; this script builds the 3.4 tool layout"; exit 1 ;;
esac

# 2. Go and the libraries: every golang-*-dev the source package build-depends on.
deps=$(apt-cache showsrc etcd | sed -n 's/^Build-Depends: //p' | head -1 | tr ',' '\n' \
  | sed 's/([^)]*)//g; s/\[[^]]*\]//g; s/|.*//; s/[[:space:]]//g' | grep -E '^golang-.*-dev$' | sort -u)
missing=()
for p in golang-go dpkg-dev $deps; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} packages: ${missing[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 3. The source, unpacked with Debian's patches, at its import path in our GOPATH.
gopath="$cache/gopath"
srcdir="$gopath/src/go.etcd.io/etcd"
if [ ! -f "$srcdir/tools/benchmark/main.go" ] || [ "$(cat "$cache/source.version" 2>/dev/null)" != "$version" ]; then
  rm -rf "$cache/dl" "$srcdir"
  mkdir -p "$cache/dl" "$(dirname "$srcdir")"
  log "apt-get source etcd=$version"
  (cd "$cache/dl" && apt-get source -qq "etcd=$version" >&2)
  unpacked=$(find "$cache/dl" -mindepth 1 -maxdepth 1 -type d -name 'etcd-*' | head -1)
  [ -f "$unpacked/tools/benchmark/main.go" ] || { log "no tools/benchmark in the source package"; exit 1; }
  mv "$unpacked" "$srcdir"
  rm -rf "$cache/dl"
  echo "$version" >"$cache/source.version"
fi

# 4. GOPATH build, offline.
log "go build ./tools/benchmark (GOPATH mode, Debian's /usr/share/gocode)"
(cd "$srcdir" && env GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
  GOPATH="$gopath:/usr/share/gocode" GOCACHE="$cache/go-build" \
  go build -o "$bin.tmp" ./tools/benchmark >&2)
mv "$bin.tmp" "$bin"
echo "etcd $version tools/benchmark, $(go version)" >"$stamp"
log "built $bin"
echo "$bin"
