#!/usr/bin/env bash
# Build actionlint, the GitHub Actions workflow linter, with the machine's Go (GOTOOLCHAIN=local) from its
# Go module github.com/rhysd/actionlint, idempotently, into a cache folder named after its version and
# the Go version, and print the binary's path on the last line of stdout (progress goes to stderr). A
# second run finds the binary and builds nothing.
#
# Environment: FACEBLUR_CACHE (cache root, default ${XDG_CACHE_HOME:-~/.cache}/faceblur);
# FACEBLUR_ACTIONLINT_VERSION (default v1.7.12); the usual GOFLAGS, GOPROXY, GOCACHE, GOMODCACHE apply.
set -euo pipefail

VERSION="${FACEBLUR_ACTIONLINT_VERSION:-v1.7.12}"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
export GOTOOLCHAIN=local CGO_ENABLED=0

say() { echo "build-actionlint: $*" >&2; }

command -v go >/dev/null 2>&1 || { say "needs Go (https://go.dev/doc/install)"; exit 1; }
KEY=$(go env GOVERSION)
DIR="$CACHE/actionlint/$VERSION-$KEY"
if [ -x "$DIR/actionlint" ]; then
  echo "$DIR/actionlint"
  exit 0
fi
mkdir -p "$DIR"
exec 9>"$DIR/.build.lock"  # one build at a time: a second caller waits, then finds the binary
flock 9
if [ -x "$DIR/actionlint" ]; then echo "$DIR/actionlint"; exit 0; fi
say "building actionlint $VERSION with $KEY into $DIR"
started=$SECONDS
GOBIN="$DIR/.tmp" go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" >&2
mv "$DIR/.tmp/actionlint" "$DIR/actionlint"
rmdir "$DIR/.tmp"
say "built in $((SECONDS - started))s"
echo "$DIR/actionlint"
