#!/usr/bin/env bash
# Build a faceblur release, and with --push publish it: what .github/workflows/release.yaml runs on a tag
# v*, step by step, and what anyone can run locally to get the same images under the same names.
#
#   worker      REGISTRY/faceblur-worker:VERSION       Dockerfile.worker: the CPU worker and the operator
#                                                      (one image; the chart's operator Deployment runs it)
#   worker-gpu  REGISTRY/faceblur-worker-gpu:VERSION   Dockerfile.gpu
#   minio       REGISTRY/faceblur-minio:MINIO_TAG      docker/minio.Dockerfile: MinIO and mc built with Go
#                                                      from their modules (docker/minio.env), the chart's
#                                                      minio.enabled store; MINIO_TAG is MinIO's version
#   chart       dist/faceblur-VERSION.tgz: the chart with version and appVersion VERSION and its image
#               repositories under REGISTRY, checked by rendering it; pushed as REGISTRY/faceblur:VERSION
#               (helm install faceblur oci://REGISTRY/faceblur --version VERSION)
#   python      dist/python/: sdist and wheel of faceblur-anonymizer-contract and faceblur-anonymizer (the CLI)
#   images      worker, worker-gpu and minio
#   list        what the steps make, one "NAME REFERENCE" line each, and nothing else (no check, no build)
#   check       VERSION is SemVer and the in-repo versions say the same (every build step checks it first)
#
# The version comes from one place: the release tag (FACEBLUR_VERSION=v1.2.0, the leading v dropped). It
# tags the images and stamps the chart; the Python packages and charts/faceblur/Chart.yaml carry it
# too (their files are what a clone at the tag installs), so `check` fails unless all of them say it.
#
# Usage: scripts/release.sh [--push] [--stand-in-bases] STEP...   (default: list)
#   --push            push the images (buildah push) and the chart (helm push); log in first
#                     (buildah login ghcr.io; helm registry login ghcr.io)
#   --stand-in-bases  build on the local stand-ins of the base images that scripts/build-images.sh makes
#                     (a machine that reaches no image registry, as the tests' does)
#
# Environment:
#   FACEBLUR_VERSION        release version (default: appVersion of charts/faceblur/Chart.yaml)
#   FACEBLUR_REGISTRY       registry namespace, lower case (default ghcr.io/faceblur, the chart's defaults)
#   FACEBLUR_SOURCE_URL     repository the images link to (default https://github.com/faceblur/faceblur)
#   FACEBLUR_REVISION       commit the images are labelled with (default: the checkout's HEAD)
#   FACEBLUR_DIST           output folder (default dist/ in the checkout)
#   FACEBLUR_PYTHON_IMAGE, FACEBLUR_CUDA_IMAGE, FACEBLUR_MINIO_BASE_IMAGE
#                           base images (default: each Dockerfile's own)
#   FACEBLUR_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/faceblur): MinIO's binaries,
#                           the Python build tool
#   FACEBLUR_PYTHON         Python that builds the distributions (default: the checkout's .venv, else python3)
#   HELM                    helm binary (default: helm on PATH)
#   BUILDAH_RUNTIME         OCI runtime of the RUN steps (default /usr/bin/runc where it is, as
#                           scripts/build-images.sh: crun refuses hybrid cgroups)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART_DIR="$REPO/charts/faceblur"
DEFAULT_REGISTRY=ghcr.io/faceblur  # what charts/faceblur/values.yaml names
REGISTRY="${FACEBLUR_REGISTRY:-$DEFAULT_REGISTRY}"
SOURCE_URL="${FACEBLUR_SOURCE_URL:-https://github.com/faceblur/faceblur}"
DIST="${FACEBLUR_DIST:-$REPO/dist}"
CACHE="${FACEBLUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceblur}"
HELM="${HELM:-helm}"
BUILD_TOOL="build==1.6.1"  # PyPA's build, for the sdists and wheels
if [ -z "${BUILDAH_RUNTIME:-}" ] && [ -x /usr/bin/runc ]; then export BUILDAH_RUNTIME=/usr/bin/runc; fi
# shellcheck source=docker/minio.env
. "$REPO/docker/minio.env"
MINIO_TAG="${MINIO_VERSION#v0.0.0-}"
PUSH=0
STAND_INS=0
started=$SECONDS

say() { echo "release: [$((SECONDS - started))s] $*" >&2; }
die() { echo "release: $*" >&2; exit 1; }

chart_field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\} *$/\1/p" "$CHART_DIR/Chart.yaml"; }
project_version() { sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/$1/pyproject.toml"; }

VERSION="${FACEBLUR_VERSION:-$(chart_field appVersion)}"
VERSION="${VERSION#v}"
REVISION="${FACEBLUR_REVISION:-$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)}"

reference() {  # reference NAME: the image or chart reference a step makes
  case "$1" in
    worker | worker-gpu) echo "$REGISTRY/faceblur-$1:$VERSION" ;;
    minio) echo "$REGISTRY/faceblur-minio:$MINIO_TAG" ;;
    chart) echo "$REGISTRY/faceblur:$VERSION" ;;
  esac
}

check_versions() {
  [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
    || die "version $VERSION is not SemVer MAJOR.MINOR.PATCH[-PRERELEASE] (a chart version and an image tag)"
  [[ "$REGISTRY" =~ ^[a-z0-9.:/_-]+$ ]] || die "registry $REGISTRY: image names are lower case"
  local wrong=() p
  for p in contract worker operator; do
    [ "$(project_version "$p")" = "$VERSION" ] || wrong+=("$p/pyproject.toml version=$(project_version "$p")")
  done
  [ "$(chart_field version)" = "$VERSION" ] || wrong+=("Chart.yaml version=$(chart_field version)")
  [ "$(chart_field appVersion)" = "$VERSION" ] || wrong+=("Chart.yaml appVersion=$(chart_field appVersion)")
  [ ${#wrong[@]} -eq 0 ] || die "releasing $VERSION, but: ${wrong[*]} (set them to $VERSION, commit, tag again)"
  say "version $VERSION, registry $REGISTRY"
}

stand_in() {  # stand_in REPOSITORY: the newest local image of that repository
  local found
  found=$(buildah images --format '{{.Name}}:{{.Tag}}' --filter "reference=$1" 2>/dev/null | head -1)
  [ -n "$found" ] || die "no $1 image: run scripts/build-images.sh worker-gpu first (it makes the stand-ins)"
  echo "$found"
}

# build_image NAME DOCKERFILE CONTEXT BUILD_ARG...: buildah bud, then buildah push with --push.
build_image() {
  local name=$1 dockerfile=$2 context=$3 ref args=() a
  shift 3
  ref=$(reference "$name")
  for a in "$@"; do args+=(--build-arg "$a"); done
  say "$name: building $ref from $dockerfile"
  mkdir -p "$DIST/images"
  buildah bud --layers --network host -f "$REPO/$dockerfile" "${args[@]}" \
    --label "org.opencontainers.image.source=$SOURCE_URL" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --iidfile "$DIST/images/$name.iid" -t "$ref" "$context" >&2
  if [ "$PUSH" -eq 1 ]; then
    say "$name: pushing $ref"
    buildah push --digestfile "$DIST/images/$name.digest" "$ref" "docker://$ref" >&2
    printf '%s\t%s@%s\n' "$name" "$ref" "$(cat "$DIST/images/$name.digest")" > "$DIST/images/$name.txt"
  else
    printf '%s\t%s\n' "$name" "$ref" > "$DIST/images/$name.txt"
  fi
}

# base_arg ARG STAND_IN VALUE: the build argument naming a base image: the stand-in with
# --stand-in-bases, else VALUE if set, else nothing (the Dockerfile's own default).
base_arg() {
  local image=$3
  if [ "$STAND_INS" -eq 1 ]; then image=$(stand_in "$2"); fi
  if [ -n "$image" ]; then echo "$1=$image"; fi
}

step_worker() {
  local base
  base=$(base_arg PYTHON_IMAGE localhost/faceblur/python-base "${FACEBLUR_PYTHON_IMAGE:-}")
  build_image worker Dockerfile.worker "$REPO" ${base:+"$base"}
}

step_worker_gpu() {
  local base
  base=$(base_arg CUDA_IMAGE localhost/faceblur/cuda-standin "${FACEBLUR_CUDA_IMAGE:-}")
  build_image worker-gpu Dockerfile.gpu "$REPO" ${base:+"$base"}
}

# go_install MODULE VERSION DIR: the module's main package, built with the machine's Go into DIR (the
# folder scripts/build-images.sh uses, so each reuses what the other built).
go_install() {
  local module=$1 version=$2 dir=$3 name=${1##*/}
  [ -x "$dir/$name" ] && return 0
  command -v go >/dev/null 2>&1 || die "minio needs Go (https://go.dev/doc/install)"
  say "minio: building $module@$version with $(go env GOVERSION) (minutes the first time)"
  mkdir -p "$dir"
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}" GOBIN="$dir/.tmp" \
    go install -trimpath -ldflags "-s -w" "$module@$version" >&2
  mv "$dir/.tmp/$name" "$dir/$name"
  rmdir "$dir/.tmp"
}

step_minio() {
  local dir="$CACHE/images/minio-${MINIO_VERSION##*-}-mc-${MC_VERSION##*-}" base
  go_install github.com/minio/minio "$MINIO_VERSION" "$dir"
  go_install github.com/minio/mc "$MC_VERSION" "$dir"
  base=$(base_arg BASE_IMAGE localhost/faceblur/python-base "${FACEBLUR_MINIO_BASE_IMAGE:-}")
  build_image minio docker/minio.Dockerfile "$dir" "MINIO_VERSION=$MINIO_VERSION" "MC_VERSION=$MC_VERSION" \
    ${base:+"$base"}
}

# rendered_images CHART SET...: every image the chart's pods and the operator's job pods would run.
rendered_images() {
  local chart=$1
  shift
  "$HELM" template faceblur "$chart" --namespace faceblur-system "$@" | awk '
    $1 == "image:" { print $2 }
    $1 == "-" && $2 == "name:" && ($3 == "FACEBLUR_WORKER_IMAGE" || $3 == "FACEBLUR_GPU_WORKER_IMAGE") { env = 1; next }
    env && $1 == "value:" { print $2 }
    { env = 0 }' | tr -d '"' | sort -u
}

step_chart() {
  command -v "$HELM" >/dev/null 2>&1 || die "the chart needs helm (https://helm.sh/docs/intro/install/)"
  local work published image rendered storage=(--set defaults.storage.endpoint=https://s3.example.com
    --set defaults.storage.credentialsSecret.name=faceblur-s3)
  work="$DIST/.chart"
  rm -rf "$work"
  mkdir -p "$work"
  cp -r "$CHART_DIR" "$work/faceblur"
  # The chart names the default registry's images; a release to another namespace names its own.
  sed -i "s#^\(  *repository: \)$DEFAULT_REGISTRY/#\1$REGISTRY/#" "$work/faceblur/values.yaml"
  mkdir -p "$DIST"
  rm -f "$DIST"/faceblur-*.tgz
  "$HELM" package "$work/faceblur" --version "$VERSION" --app-version "$VERSION" --destination "$DIST" >&2
  published=" $(reference worker) $(reference worker-gpu) $(reference minio) "
  rm -rf "$work"
  rendered=$(rendered_images "$DIST/faceblur-$VERSION.tgz" "${storage[@]}"
    rendered_images "$DIST/faceblur-$VERSION.tgz" --set minio.enabled=true)
  for image in $rendered; do
    [[ "$published" == *" $image "* ]] || die "the chart renders $image, which this release does not publish"
  done
  say "chart: $DIST/faceblur-$VERSION.tgz renders only this release's images"
  if [ "$PUSH" -eq 1 ]; then
    say "chart: pushing to oci://$REGISTRY"
    "$HELM" push "$DIST/faceblur-$VERSION.tgz" "oci://$REGISTRY" >&2
  fi
}

python_with_build() {  # a Python that has PyPA's build: the given one, else a tools venv in the cache
  local py="${FACEBLUR_PYTHON:-}"
  if [ -z "$py" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then py="$REPO/.venv/bin/python"; else py=python3; fi
  fi
  if "$py" -c 'import build' 2>/dev/null; then echo "$py"; return; fi
  local tools
  tools="$CACHE/release-tools/$("$py" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')-${BUILD_TOOL//=/}"
  if [ ! -x "$tools/bin/python" ] || ! "$tools/bin/python" -c 'import build' 2>/dev/null; then
    say "python: installing $BUILD_TOOL into $tools"
    "$py" -m venv "$tools"
    "$tools/bin/python" -m pip install -q "$BUILD_TOOL" >&2
  fi
  echo "$tools/bin/python"
}

step_python() {
  local py out="$DIST/python" project
  py=$(python_with_build)
  rm -rf "$out"
  mkdir -p "$out"
  for project in contract worker; do
    say "python: sdist of $project/, and the wheel built from it"
    "$py" -m build --outdir "$out" "$REPO/$project" >&2
  done
  ls "$out" >&2
}

step_list() {
  local n
  for n in worker worker-gpu minio chart; do printf '%s %s\n' "$n" "$(reference "$n")"; done
}

steps=()
for a in "$@"; do
  case "$a" in
    --push) PUSH=1 ;;
    --stand-in-bases) STAND_INS=1 ;;
    images) steps+=(worker worker-gpu minio) ;;
    worker | worker-gpu | minio | chart | python | list | check) steps+=("$a") ;;
    *) die "unknown argument: $a (steps: worker worker-gpu minio images chart python list check)" ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || steps=(list)
if [ "${steps[*]}" = list ]; then step_list; exit 0; fi
check_versions
for s in "${steps[@]}"; do
  case "$s" in
    list) step_list ;;
    check) ;;
    *) "step_${s//-/_}" ;;
  esac
done
say "done"
