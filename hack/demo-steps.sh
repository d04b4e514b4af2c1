# shellcheck shell=bash
# The quickstart's steps once a cluster runs and its node has the worker image: sourced (never run) by
# hack/kind-demo.sh on kind and by hack/node-demo.sh on any other cluster (the test node among them), so
# both run exactly these commands:
#   3. install the chart with its MinIO (bucket "faceblur", S3 API on NodePort 30900)
#   4. upload a sample video (made with ffmpeg from a photo of faces) or the one given
#   5. apply a FaceBlurJob (manifests/examples/cpu.yaml), wait for Succeeded
#   6. download the anonymized video
#
# The caller sets REPO, OUT (the demo folder), TIMEOUT (seconds for the job), VIDEO (a video or empty)
# and HELM_EXTRA (an array of more helm arguments, may be empty), and defines
#   media COMMAND ARGS...   hack/kind/demo_media.py (sample FILE | put FILE URL | get URL FILE), run where
#                           it reaches the node's port $NODE_PORT, in $OUT (FILE is relative to it), with
#                           the MinIO keys $ACCESS_KEY and $SECRET_KEY.

NAMESPACE=faceblur-system
RELEASE=faceblur
JOB=people-cpu                                    # metadata.name in manifests/examples/cpu.yaml
INPUT_URL=s3://faceblur/samples/people.mp4        # spec.input of that example
OUTPUT_URL=s3://faceblur/blurred/people-cpu.mp4   # spec.output of that example
RESULT=people-cpu.blurred.mp4                     # the download, in $OUT
NODE_PORT=30900

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

demo_steps() {
  say "installing the chart with MinIO"
  helm upgrade --install "$RELEASE" "$REPO/charts/faceblur" \
    --namespace "$NAMESPACE" --create-namespace \
    --set minio.enabled=true \
    --set minio.service.type=NodePort --set minio.service.nodePort="$NODE_PORT" \
    --set defaults.images.pullPolicy=IfNotPresent \
    ${HELM_EXTRA[@]+"${HELM_EXTRA[@]}"} \
    --wait --timeout 10m
  kubectl -n "$NAMESPACE" rollout status deployment/"$RELEASE"-operator --timeout 5m

  secret() { kubectl -n "$NAMESPACE" get secret "$RELEASE"-minio -o jsonpath="{.data.$1}" | base64 -d; }
  # shellcheck disable=SC2034  # read by the caller's media()
  ACCESS_KEY="$(secret accessKey)" SECRET_KEY="$(secret secretKey)"

  if [ -n "$VIDEO" ]; then
    say "using $VIDEO"
    cp "$VIDEO" "$OUT/input.mp4"
  else
    say "making a sample video with faces"
    media sample input.mp4
  fi
  say "uploading to $INPUT_URL"
  media put input.mp4 "$INPUT_URL"

  say "applying the FaceBlurJob $JOB"
  kubectl -n "$NAMESPACE" delete faceblurjob "$JOB" --ignore-not-found --wait
  kubectl -n "$NAMESPACE" apply -f "$REPO/manifests/examples/cpu.yaml"

  say "waiting for Succeeded (kubectl -n $NAMESPACE get fbj $JOB -w shows the same)"
  local deadline=$((SECONDS + TIMEOUT)) phase="" now
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
  media get "$OUTPUT_URL" "$RESULT"
  echo
  echo "Anonymized video: $OUT/$RESULT   (input: $OUT/input.mp4)"
}
