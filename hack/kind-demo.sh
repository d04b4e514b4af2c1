#!/usr/bin/env bash
# faceblur on a laptop, end to end, with nothing but Docker, kind, kubectl and helm:
#   1. create a kind cluster (hack/kind/cluster.yaml), unless it exists
#   2. build the worker image (Dockerfile.worker) and load it into the cluster
#   3. install the chart with its MinIO (bucket "faceblur")
#   4. upload a sample video (made with ffmpeg from a photo of faces) or the one you give
#   5. apply a FaceBlurJob (manifests/examples/cpu.yaml), wait for Succeeded
#   6. download the anonymized video and print where it is
#
# Usage: hack/kind-demo.sh [VIDEO]          (run it again: every step is idempotent)
# Environment:
#   FACEBLUR_KIND_CLUSTER   cluster name (default faceblur)
#   FACEBLUR_DEMO_OUT       folder for the sample and the result (default ./faceblur-demo)
#   FACEBLUR_DEMO_TIMEOUT   seconds to wait for the job (default 900)
#   FACEBLUR_SKIP_BUILD=1   use the faceblur/worker image already in the cluster
# Clean up with: kind delete cluster --name faceblur
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${FACEBLUR_KIND_CLUSTER:-faceblur}"
OUT="${FACEBLUR_DEMO_OUT:-$PWD/faceblur-demo}"
TIMEOUT="${FACEBLUR_DEMO_TIMEOUT:-900}"
NAMESPACE=faceblur-system
RELEASE=faceblur
JOB=people-cpu                                    # metadata.name in manifests/examples/cpu.yaml
INPUT_URL=s3://faceblur/samples/people.mp4        # spec.input of that example
OUTPUT_URL=s3://faceblur/blurred/people-cpu.mp4   # spec.output of that example
VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO/charts/faceblur/Chart.yaml")"
IMAGE="faceblur/worker:$VERSION"
NODE_PORT=30900

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-demo: %s\n' "$*" >&2; exit 1; }

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

say "installing the chart with MinIO"
helm upgrade --install "$RELEASE" "$REPO/charts/faceblur" \
  --namespace "$NAMESPACE" --create-namespace \
  --set minio.enabled=true \
  --set minio.service.type=NodePort --set minio.service.nodePort="$NODE_PORT" \
  --set defaults.images.pullPolicy=IfNotPresent \
  --wait --timeout 10m
kubectl -n "$NAMESPACE" rollout status deployment/"$RELEASE"-operator --timeout 5m

secret() { kubectl -n "$NAMESPACE" get secret "$RELEASE"-minio -o jsonpath="{.data.$1}" | base64 -d; }
ACCESS_KEY="$(secret accessKey)"
SECRET_KEY="$(secret secretKey)"

# Media chores run in the worker image on kind's Docker network, which reaches the node's NodePort.
media() {
  docker run --rm --network kind --user "$(id -u):$(id -g)" \
    -v "$OUT:/demo" -v "$REPO/hack/kind:/hack:ro" \
    -e FACEBLUR_S3_ENDPOINT="$CLUSTER-control-plane:$NODE_PORT" \
    -e FACEBLUR_S3_ACCESS_KEY="$ACCESS_KEY" -e FACEBLUR_S3_SECRET_KEY="$SECRET_KEY" \
    "$IMAGE" python /hack/demo_media.py "$@"
}

if [ -n "$VIDEO" ]; then
  say "using $VIDEO"
  cp "$VIDEO" "$OUT/input.mp4"
else
  say "making a sample video with faces"
  media sample /demo/input.mp4
fi
say "uploading to $INPUT_URL"
media put /demo/input.mp4 "$INPUT_URL"

say "applying the FaceBlurJob $JOB"
kubectl -n "$NAMESPACE" delete faceblurjob "$JOB" --ignore-not-found --wait
kubectl -n "$NAMESPACE" apply -f "$REPO/manifests/examples/cpu.yaml"

say "waiting for Succeeded (kubectl -n $NAMESPACE get fbj $JOB -w shows the same)"
deadline=$((SECONDS + TIMEOUT))
phase=""
while [ "$SECONDS" -lt "$deadline" ]; do
  now="$(kubectl -n "$NAMESPACE" get faceblurjob "$JOB" -o jsonpath='{.status.phase} {.status.progress.chunks}')"
  [ "$now" = "$phase" ] || { echo "  ${now:-Pending}"; phase="$now"; }
  case "$now" in
    Succeeded*) break ;;
    Failed*)
      kubectl -n "$NAMESPACE" describe faceblurjob "$JOB" >&2
      die "the job failed: see the conditions and events above" ;;
  esac
  sleep 3
done
case "$phase" in Succeeded*) ;; *) die "not done after ${TIMEOUT}s: kubectl -n $NAMESPACE describe fbj $JOB" ;; esac
kubectl -n "$NAMESPACE" get faceblurjob "$JOB"

say "downloading $OUTPUT_URL"
media get "$OUTPUT_URL" /demo/people-cpu.blurred.mp4
echo
echo "Anonymized video: $OUT/people-cpu.blurred.mp4   (input: $OUT/input.mp4)"
echo "MinIO for your own S3 client: http://127.0.0.1:$NODE_PORT  access key $ACCESS_KEY"
echo "Secret key: kubectl -n $NAMESPACE get secret $RELEASE-minio -o jsonpath='{.data.secretKey}' | base64 -d"
