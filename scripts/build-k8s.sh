#!/usr/bin/env bash
# Obtain the control-plane binaries for the test cluster, idempotently, into a cache outside the repository.
#   kube-apiserver, kube-controller-manager, kube-scheduler: built with the machine's Go from k8s.io/kubernetes
#   etcd: built from the etcd Go module; kubectl and helm: built from their Go modules.
# If KUBEBUILDER_ASSETS names a folder that holds all of them, nothing is built and that folder is printed.
# Prints the folder holding the binaries on its last line.
set -euo pipefail

K8S_VERSION="${FACEBLUR_K8S_VERSION:-1.34.4}"
ETCD_VERSION="${FACEBLUR_ETCD_VERSION:-3.6.5}"
HELM_VERSION="${FACEBLUR_HELM_VERSION:-3.19.0}"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
BIN="$CACHE/k8s-v$K8S_VERSION/bin"
NEEDED=(kube-apiserver kube-controller-manager kube-scheduler etcd kubectl helm)

have_all() { local d=$1; for b in "${NEEDED[@]}"; do [ -x "$d/$b" ] || return 1; done; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi
if have_all "$BIN"; then echo "$BIN"; exit 0; fi

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$BIN"
work="$CACHE/k8s-v$K8S_VERSION/src"
mkdir -p "$work"

build_k8s() {
  cd "$work"
  if [ ! -f go.mod ]; then
    go mod init faceblur.local/k8sbuild >/dev/null 2>&1
    modfile=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    # Every staging module that k8s.io/kubernetes replaces with a local path gets its matching v0.x release.
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
)
GO
  fi
  go mod tidy -e >/dev/null 2>&1 || true
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$BIN/$c" ] || { echo "building $c (k8s v$K8S_VERSION) ..." >&2; go build -trimpath -ldflags "-s -w" -o "$BIN/$c" "k8s.io/kubernetes/cmd/$c"; }
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  echo "building etcd v$ETCD_VERSION ..." >&2
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" 2>/dev/null \
    && mv "$BIN/server" "$BIN/etcd" 2>/dev/null || true
  [ -x "$BIN/etcd" ] || { echo "etcd build failed" >&2; return 1; }
}

build_kubectl() {
  [ -x "$BIN/kubectl" ] && return 0
  echo "building kubectl ..." >&2
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl)
}

build_helm() {
  [ -x "$BIN/helm" ] && return 0
  echo "building helm v$HELM_VERSION ..." >&2
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

build_k8s
build_kubectl
build_etcd
build_helm
have_all "$BIN"
echo "$BIN"
