# syntax=docker/dockerfile:1
# The chart's bundled object store (minio.enabled): MinIO's server with its `mc` client beside it for the
# bucket Job. The two binaries are built from their Go modules (docker/minio.env) before this runs and
# are the whole build context:
#   scripts/release-images.sh minio     (ghcr.io/<owner>/faceblur-minio, what the chart pulls)
#   scripts/build-images.sh minio       (faceblur/minio:test, the tests' copy on the local base)
# A shell stays in the image: the bucket Job runs mc from one.

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE}
ARG MINIO_VERSION=unknown
ARG MC_VERSION=unknown
COPY --chmod=0755 minio mc /usr/bin/
# The chart runs it as 1000:1000 on a read-only root, with /data and /tmp mounted.
USER 1000:1000
WORKDIR /tmp
ENV HOME=/tmp
EXPOSE 9000
LABEL org.opencontainers.image.title="faceblur-minio" \
      org.opencontainers.image.description="MinIO ${MINIO_VERSION} and mc ${MC_VERSION}, built from their Go modules" \
      org.opencontainers.image.licenses="AGPL-3.0-only"
ENTRYPOINT ["minio"]
CMD ["server", "/data"]
