#!/usr/bin/env bash
# Build the project's container images without any registry or Docker engine, idempotently, and export
# each as an OCI archive for the test node's containerd (ctr -n k8s.io images import ARCHIVE).
#
#   base    a Debian bookworm Python 3.11 base (mmdebstrap --variant=minbase), standing in for the
#           python:3.11-slim-bookworm image no registry can give us; it trusts this machine's locally
#           added CA certificates (the package proxy's among them) and points pip and requests at the
#           system bundle, and uses the host's Debian sources, so the Dockerfile's pinned ffmpeg resolves.
#           Its tarball is cached, keyed on the package list, the sources and the CA files.
#   worker  Dockerfile.worker as it is, with PYTHON_IMAGE set to that base (buildah bud --layers, so a
#           code change rebuilds only the layers from the COPY it touches).
#   worker-gpu  Dockerfile.gpu as it is, with CUDA_IMAGE set to a stand-in made from the base (the CUDA
#           image's environment, no CUDA libraries: its pods use onnxruntime's CPU provider).
#   minio   docker/minio.Dockerfile, the recipe of the published faceblur-minio, on the base: MinIO and mc
#           built with the machine's Go from their modules (docker/minio.env; FACEBLUR_MINIO_VERSION,
#           FACEBLUR_MC_VERSION override it); for the chart's minio.enabled with
#           --set minio.image.repository=faceblur/minio,minio.image.tag=test.
#
# Usage: scripts/build-images.sh [worker] [worker-gpu] [minio]   (default: worker)
# stdout: one line per image, NAME REFERENCE ARCHIVE IMAGE_ID separated by tabs; progress goes to stderr.
# An archive is written again only when its image id changed.
#
# Environment:
#   FACEBLUR_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/faceblur); archives and the base
#                           tarball go into its images/ folder. buildah's own storage (layers, the layer
#                           cache) stays where buildah keeps it (root: /var/lib/containers/storage).
#   FACEBLUR_IMAGE_TAG      tag of the images (default test: faceblur/worker:test, as the tests' operator
#                           defaults name it; install the chart with --set image.tag=test).
#   FACEBLUR_IMAGE_CONTEXT  build context (default: this checkout).
#   FACEBLUR_APT_SOURCES    apt sources file the base uses (default: the host's debian.sources).
#   FACEBLUR_BUILD_JOBS     stages buildah builds at once (default 2).
#   BUILDAH_RUNTIME         OCI runtime of the RUN steps (default /usr/bin/runc: crun refuses hybrid cgroups).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}/images"
TAG="${FACEBLUR_IMAGE_TAG:-test}"
CONTEXT="${FACEBLUR_IMAGE_CONTEXT:-$REPO}"
JOBS="${FACEBLUR_BUILD_JOBS:-2}"
PREFIX="docker.io/faceblur"  # what a kubelet asks containerd for when a pod names faceblur/...:TAG
export BUILDAH_RUNTIME="${BUILDAH_RUNTIME:-/usr/bin/runc}"
# MinIO has no semver tags, so the Go module proxy serves its commits as pseudo-versions.
# shellcheck source=docker/minio.env
. "$REPO/docker/minio.env"
MINIO_VERSION="${FACEBLUR_MINIO_VERSION:-$MINIO_VERSION}"
MC_VERSION="${FACEBLUR_MC_VERSION:-$MC_VERSION}"
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
CA_DIR=/usr/local/share/ca-certificates
BUNDLE=/etc/ssl/certs/ca-certificates.crt
started=$SECONDS

say() { echo "build-images: [$((SECONDS - started))s] $*" >&2; }

ensure_tools() {
  local missing=() t
  for t in buildah mmdebstrap; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ -x "$BUILDAH_RUNTIME" ] || missing+=(runc)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

apt_sources() {
  if [ -n "${FACEBLUR_APT_SOURCES:-}" ]; then echo "$FACEBLUR_APT_SOURCES"; return; fi
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then echo "$f"; return; fi
  done
  echo "no apt sources found; set FACEBLUR_APT_SOURCES" >&2
  return 1
}

ca_files() { find "$CA_DIR" -type f -name '*.crt' 2>/dev/null | sort; }

# The base image's name carries a hash of everything it is made from, so a change makes a new one.
base_key() {
  local sources=$1
  {
    echo "recipe 1 $BASE_SUITE $BASE_PACKAGES $BUNDLE"
    cat "$sources"
    ca_files | while read -r f; do echo "$f"; cat "$f"; done
  } | sha256sum | cut -c1-16
}

image_id() { buildah images --no-trunc --noheading --format '{{.ID}}' "$1" 2>/dev/null | head -1; }

ensure_base() {  # prints the base image's reference
  local sources key ref tarball
  sources=$(apt_sources)
  key=$(base_key "$sources")
  ref="localhost/faceblur/python-base:$key"
  if [ -n "$(image_id "$ref")" ]; then echo "$ref"; return; fi
  tarball="$CACHE/python-base-$key.tar"
  if [ ! -s "$tarball" ]; then
    say "base: mmdebstrap $BASE_SUITE with $BASE_PACKAGES (about 2.5 minutes)"
    local hooks=() cas
    mapfile -t cas < <(ca_files)
    if [ ${#cas[@]} -gt 0 ]; then
      hooks+=(--customize-hook="copy-in ${cas[*]} $CA_DIR/")
    fi
    hooks+=(--customize-hook='chroot "$1" update-ca-certificates')
    nice -n 10 mmdebstrap --quiet --variant=minbase --include="$BASE_PACKAGES" "${hooks[@]}" \
      "$BASE_SUITE" "$tarball.tmp" "$sources" >&2
    rm -f "$CACHE"/python-base-*.tar
    mv "$tarball.tmp" "$tarball"
  fi
  say "base: importing $tarball as $ref"
  local ctr
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --env PIP_CERT="$BUNDLE" \
    --env REQUESTS_CA_BUNDLE="$BUNDLE" \
    --env SSL_CERT_FILE="$BUNDLE" \
    --cmd python3 \
    --label org.opencontainers.image.description="faceblur test base: Debian $BASE_SUITE minbase + Python 3" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  echo "$ref"
}

# build NAME DOCKERFILE REFERENCE BUILD_ARG...: buildah bud with the layer cache; prints the image id.
# The context is the checkout, or BUILD_CONTEXT where set (the MinIO image's is its binaries' folder).
build() {
  local name=$1 dockerfile=$2 ref=$3 args=() a
  shift 3
  for a in "$@"; do args+=(--build-arg "$a"); done
  local idfile="$CACHE/.$name.iid"
  say "$name: buildah bud -f $dockerfile (layer cache on; a cold build takes minutes)"
  nice -n 10 buildah bud --layers --jobs "$JOBS" --network host -f "$CONTEXT/$dockerfile" "${args[@]}" \
    --iidfile "$idfile" -t "$ref" "${BUILD_CONTEXT:-$CONTEXT}" >&2
  cat "$idfile"
}

# export NAME REFERENCE IMAGE_ID: the OCI archive, rewritten only when the image id changed.
export_archive() {
  local name=$1 ref=$2 id=$3
  local archive="$CACHE/$name.oci.tar" stamp="$CACHE/$name.oci.tar.id"
  if [ -s "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$id $ref" ]; then
    say "$name: $archive is up to date"
  else
    say "$name: exporting $ref to $archive"
    rm -f "$archive.tmp" "$stamp"
    buildah push --quiet --format oci --compression-format zstd "$ref" "oci-archive:$archive.tmp:$ref" >&2
    mv "$archive.tmp" "$archive"
    echo "$id $ref" > "$stamp"
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$ref" "$archive" "$id"
}

# A stand-in for nvidia/cuda:*-cudnn-runtime-ubuntu*, which no registry can give us: the local base with
# the CUDA image's environment and folders but no CUDA libraries, so Dockerfile.gpu builds as it is and
# its onnxruntime-gpu falls back to the CPU provider. Everything but CUDA itself gets checked.
ensure_cuda_standin() {  # prints the stand-in's reference
  local base ref ctr
  base=$(ensure_base)
  ref="localhost/faceblur/cuda-standin:${base##*:}-r1"
  if [ -n "$(image_id "$ref")" ]; then echo "$ref"; return; fi
  say "worker-gpu: making the CUDA base stand-in $ref from $base"
  ctr=$(buildah from --pull=never "$base")
  buildah run "$ctr" -- mkdir -p /usr/local/cuda/lib64 /usr/local/nvidia/lib /usr/local/nvidia/lib64 >&2
  buildah config \
    --env PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    --env CUDA_VERSION=13.0.2 \
    --env NVIDIA_VISIBLE_DEVICES=all \
    --env NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    --label org.opencontainers.image.description="faceblur test stand-in for the CUDA base: no CUDA inside" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  echo "$ref"
}

build_worker_gpu() {
  local base ref id
  base=$(ensure_cuda_standin)
  ref="$PREFIX/worker-gpu:$TAG"
  id=$(build worker-gpu Dockerfile.gpu "$ref" "CUDA_IMAGE=$base")
  export_archive worker-gpu "$ref" "$id"
}

# go_install MODULE VERSION DIR: the module's main package, built with the machine's Go into DIR.
go_install() {
  local module=$1 version=$2 dir=$3 name=${1##*/}
  [ -x "$dir/$name" ] && return 0
  command -v go >/dev/null 2>&1 || { echo "build-images: minio needs Go (https://go.dev/doc/install)" >&2; return 1; }
  say "minio: building $module@$version with $(go env GOVERSION) (minutes the first time)"
  mkdir -p "$dir"
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}" GOBIN="$dir/.tmp" \
    nice -n 10 go install -p "$JOBS" -trimpath -ldflags "-s -w" "$module@$version" >&2
  mv "$dir/.tmp/$name" "$dir/$name"
  rmdir "$dir/.tmp"
}

# The chart's MinIO (minio.enabled) from MinIO's own Go modules, by the published image's recipe on the
# local base: `minio` as the entry point (the chart passes only its arguments), `mc` beside it for the
# bucket Job's shell.
build_minio() {
  local base dir ref id
  base=$(ensure_base)
  dir="$CACHE/minio-${MINIO_VERSION##*-}-mc-${MC_VERSION##*-}"
  go_install github.com/minio/minio "$MINIO_VERSION" "$dir"
  go_install github.com/minio/mc "$MC_VERSION" "$dir"
  ref="$PREFIX/minio:$TAG"
  id=$(BUILD_CONTEXT=$dir build minio docker/minio.Dockerfile "$ref" \
    "BASE_IMAGE=$base" "MINIO_VERSION=$MINIO_VERSION" "MC_VERSION=$MC_VERSION")
  export_archive minio "$ref" "$id"
}

build_worker() {
  local base ref id
  base=$(ensure_base)
  ref="$PREFIX/worker:$TAG"
  id=$(build worker Dockerfile.worker "$ref" "PYTHON_IMAGE=$base")
  export_archive worker "$ref" "$id"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(worker)
for n in "${names[@]}"; do
  case "$n" in
    worker | worker-gpu | minio) ;;
    *) echo "unknown image: $n (known: worker, worker-gpu, minio)" >&2; exit 2 ;;
  esac
done
ensure_tools
mkdir -p "$CACHE"
# One build at a time (parallel test sessions share the cache and buildah's storage): wait for it.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then say "another image build is running: waiting for it"; flock 9; fi
for n in "${names[@]}"; do "build_${n//-/_}"; done
say "done"
