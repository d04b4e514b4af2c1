#!/usr/bin/env bash
# The kind quickstart (hack/kind-demo.sh) on a cluster that already runs and whose node already has the
# images, without Docker or kind: the same steps 3 to 6 (hack/demo-steps.sh: chart with its MinIO on
# NodePort 30900, sample video up, manifests/examples/cpu.yaml, Succeeded, result down), with the media
# chores run by this checkout's Python instead of a container. What kind-demo.sh does before them
# (kind create, docker build, kind load) is the cluster's business here: e.g. faceblur-testenv's real
# node with the images from scripts/build-images.sh imported, where tests/node/test_user_path.py runs it.
#
# Usage: hack/node-demo.sh [VIDEO]          (kubectl and helm on PATH, KUBECONFIG pointing at the cluster)
# Environment:
#   FACEBLUR_DEMO_OUT         folder for the sample and the result (default ./faceblur-demo)
#   FACEBLUR_DEMO_TIMEOUT     seconds to wait for the job (default 900)
#   FACEBLUR_DEMO_IMAGE_TAG   tag of faceblur/worker and of the MinIO image on the node (default test,
#                             as scripts/build-images.sh tags them)
#   FACEBLUR_DEMO_MINIO_IMAGE repository of the MinIO image (default faceblur/minio, built from MinIO's
#                             Go modules by scripts/build-images.sh minio)
#   FACEBLUR_DEMO_HELM_ARGS   more helm arguments, split on whitespace (e.g. --set defaults.resources...)
#   FACEBLUR_DEMO_PYTHON      a Python with the faceblur package (default: the repo's .venv, else python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${FACEBLUR_DEMO_OUT:-$PWD/faceblur-demo}"
TIMEOUT="${FACEBLUR_DEMO_TIMEOUT:-900}"
TAG="${FACEBLUR_DEMO_IMAGE_TAG:-test}"
PYTHON="${FACEBLUR_DEMO_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
# shellcheck disable=SC2206  # split on purpose: these are separate arguments
HELM_EXTRA=(
  --set image.repository=faceblur/worker --set gpuImage.repository=faceblur/worker-gpu  # built here
  --set image.tag="$TAG" --set gpuImage.tag="$TAG"
  --set minio.image.repository="${FACEBLUR_DEMO_MINIO_IMAGE:-faceblur/minio}" --set minio.image.tag="$TAG"
  ${FACEBLUR_DEMO_HELM_ARGS:-}
)
# shellcheck source=hack/demo-steps.sh
. "$REPO/hack/demo-steps.sh"

for tool in kubectl helm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
VIDEO="${1:-}"
[ -z "$VIDEO" ] || [ -f "$VIDEO" ] || die "no such video: $VIDEO"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

NODE_IP="$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
[ -n "$NODE_IP" ] || die "no node with an InternalIP in this cluster (kubectl get nodes -o wide)"

# Media chores run here, reaching MinIO's NodePort on the node's address, as kind's run on its network.
media() {
  (
    cd "$OUT"
    FACEBLUR_S3_ENDPOINT="$NODE_IP:$NODE_PORT" \
      FACEBLUR_S3_ACCESS_KEY="$ACCESS_KEY" FACEBLUR_S3_SECRET_KEY="$SECRET_KEY" \
      "$PYTHON" "$REPO/hack/kind/demo_media.py" "$@"
  )
}

demo_steps
echo "MinIO for your own S3 client: http://$NODE_IP:$NODE_PORT  access key $ACCESS_KEY"
echo "Secret key: kubectl -n $NAMESPACE get secret $RELEASE-minio -o jsonpath='{.data.secretKey}' | base64 -d"
