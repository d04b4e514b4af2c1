#!/usr/bin/env bash
# faceblur on a laptop, end to end, with nothing but Docker, kind, kubectl and helm:
#   1. create a kind cluster (hack/kind/cluster.yaml), unless it exists
#   2. build the worker image (Dockerfile.worker) under the name the chart's defaults give it (the one the
#      release workflow publishes) and load it into the cluster
#   3. install the chart with its MinIO (bucket "faceblur"; the chart's default MinIO image, pulled from
#      the project's registry like any user's install)
#   4. upload a sample video (made with ffmpeg from a photo of faces) or the one you give
#   5. apply a FaceBlurJob (manifests/examples/cpu.yaml), wait for Succeeded
#   6. download the anonymized video and print where it is
# Steps 3 to 6 live in hack/demo-steps.sh, which hack/node-demo.sh runs too (on a cluster without kind,
# e.g. the test node, where tests/node/test_user_path.py runs them).
#
# Usage: hack/kind-demo.sh [VIDEO]          (run it again: every step is idempotent)
# Environment:
#   FACEBLUR_KIND_CLUSTER   cluster name (default faceblur)
#   FACEBLUR_DEMO_OUT       folder for the sample and the result (default ./faceblur-demo)
#   FACEBLUR_DEMO_TIMEOUT   seconds to wait for the job (default 900)
#   FACEBLUR_SKIP_BUILD=1   use the worker image already in the cluster
# Clean up with: kind delete cluster --name faceblur
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${FACEBLUR_KIND_CLUSTER:-faceblur}"
OUT="${FACEBLUR_DEMO_OUT:-$PWD/faceblur-demo}"
TIMEOUT="${FACEBLUR_DEMO_TIMEOUT:-900}"
# The chart's default worker image, as scripts/release.sh names it for the chart's appVersion: nothing to set.
IMAGE="$("$REPO/scripts/release.sh" list | sed -n 's/^worker //p')"
HELM_EXTRA=()
# shellcheck source=hack/demo-steps.sh
. "$REPO/hack/demo-steps.sh"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (see docs/deploy.md)"
done
VIDEO="${1:-}"
[ -z "$VIDEO" ] || [ -f "$VIDEO" ] || die "no such video: $VIDEO"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

say "kind cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "exists"
else
  kind create cluster --name "$CLUSTER" --config "$REPO/hack/kind/cluster.yaml" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

if [ "${FACEBLUR_SKIP_BUILD:-0}" != 1 ]; then
  say "building $IMAGE (Dockerfile.worker)"
  docker build -f "$REPO/Dockerfile.worker" -t "$IMAGE" "$REPO"
  say "loading $IMAGE into the cluster"
  kind load docker-image "$IMAGE" --name "$CLUSTER"
fi

# Media chores run in the worker image on kind's Docker network, which reaches the node's NodePort.
media() {
  docker run --rm --network kind --user "$(id -u):$(id -g)" \
    -v "$OUT:/demo" -w /demo -v "$REPO/hack/kind:/hack:ro" \
    -e FACEBLUR_S3_ENDPOINT="$CLUSTER-control-plane:$NODE_PORT" \
    -e FACEBLUR_S3_ACCESS_KEY="$ACCESS_KEY" -e FACEBLUR_S3_SECRET_KEY="$SECRET_KEY" \
    "$IMAGE" python /hack/demo_media.py "$@"
}

demo_steps
echo "MinIO for your own S3 client: http://127.0.0.1:$NODE_PORT  access key $ACCESS_KEY"
echo "Secret key: kubectl -n $NAMESPACE get secret $RELEASE-minio -o jsonpath='{.data.secretKey}' | base64 -d"
