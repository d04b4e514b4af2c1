#!/usr/bin/env bash
# Build the test cluster's DNS server, CoreDNS, with the machine's Go (GOTOOLCHAIN=local) from the
# github.com/coredns/coredns Go module, idempotently, into a cache folder named after its version, its
# plugin list and the Go version, and print the binary's path on the last line of stdout (progress goes
# to stderr). A second run finds the binary and builds nothing.
#
# Only the plugins a cluster's kube-dns Corefile needs here are compiled in (CoreDNS's documented way to
# choose plugins at build time: a main package importing them); `forward` is left out on purpose, so
# this DNS server answers cluster names only and never sends a query elsewhere.
#
# Environment: FACEBLUR_CACHE (cache root, default ${XDG_CACHE_HOME:-~/.cache}/faceblur);
# FACEBLUR_COREDNS_VERSION (default v1.15.0); the usual GOFLAGS, GOPROXY, GOCACHE, GOMODCACHE apply
# (-mod=mod is added to GOFLAGS).
set -euo pipefail

VERSION="${FACEBLUR_COREDNS_VERSION:-v1.15.0}"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
PLUGINS=(bind cache errors health kubernetes loadbalance log ready)
export GOTOOLCHAIN=local GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}" CGO_ENABLED=0

say() { echo "build-coredns: $*" >&2; }

main_go() {
  local p
  printf '// CoreDNS %s with the plugins the faceblur test cluster uses (scripts/build-coredns.sh).\n' "$VERSION"
  printf 'package main\n\nimport (\n'
  for p in "${PLUGINS[@]}"; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done
  printf '\n\t"github.com/coredns/coredns/coremain"\n)\n\nfunc main() { coremain.Run() }\n'
}

KEY=$( { go version; main_go; } | sha256sum | cut -c1-16)
DIR="$CACHE/coredns/$VERSION-$KEY"
if [ -x "$DIR/coredns" ]; then
  echo "$DIR/coredns"
  exit 0
fi
mkdir -p "$DIR/src"
exec 9>"$DIR/.build.lock"  # one build at a time: a second caller waits, then finds the binary
flock 9
if [ -x "$DIR/coredns" ]; then echo "$DIR/coredns"; exit 0; fi
say "building CoreDNS $VERSION (plugins: ${PLUGINS[*]}) into $DIR"
started=$SECONDS
(
  cd "$DIR/src"
  main_go > main.go
  [ -f go.mod ] || go mod init faceblur.local/corednsbuild >/dev/null 2>&1
  go mod edit -require "github.com/coredns/coredns@$VERSION"
  go mod tidy
  go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$VERSION" \
    -o "$DIR/coredns.tmp" .
)
mv "$DIR/coredns.tmp" "$DIR/coredns"
say "built in $((SECONDS - started))s"
echo "$DIR/coredns"
