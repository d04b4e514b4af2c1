#!/usr/bin/env bash
# Build the test node's device plugin (testenv/deviceplugin) with the machine's Go, idempotently, into
# a cache folder named after a hash of its sources and the Go version, and print the binary's path on
# the last line of stdout (progress goes to stderr). Unchanged sources: nothing is built.
#
# Environment: FACEBLUR_CACHE (cache root, default ${XDG_CACHE_HOME:-~/.cache}/faceblur); the usual
# GOFLAGS, GOPROXY, GOCACHE, GOMODCACHE apply (-mod=mod is added to GOFLAGS).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO/testenv/deviceplugin"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
NAME=faceblur-device-plugin
export GOTOOLCHAIN=local GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}" CGO_ENABLED=0

say() { echo "build-deviceplugin: $*" >&2; }

# What the binary is made of: the module files and the non-test Go sources, plus the compiler.
sources_hash() {
  (
    cd "$SRC"
    go version
    find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) ! -name '*_test.go' \
      -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-16
}

OUT="$CACHE/deviceplugin/$(sources_hash)"
if [ -x "$OUT/$NAME" ]; then
  echo "$OUT/$NAME"
  exit 0
fi
mkdir -p "$OUT"
exec 9>"$OUT/.build.lock"  # one build at a time: a second caller waits, then finds the binary
flock 9
if [ -x "$OUT/$NAME" ]; then echo "$OUT/$NAME"; exit 0; fi
say "building $NAME into $OUT"
started=$SECONDS
(cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$OUT/$NAME.tmp" .)
mv "$OUT/$NAME.tmp" "$OUT/$NAME"
say "built in $((SECONDS - started))s"
echo "$OUT/$NAME"
