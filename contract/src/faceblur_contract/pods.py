"""How many chunk pipelines a worker pod runs, from the CPUs it is given: the operator plans its
pods with it and the worker starts that many pipelines, so both read the same figure the same way."""

from __future__ import annotations

import math

# The pod's CPU limit and request in millicores, given by the Downward API (set only where the pod
# has one); the worker reads the limit, else the request, else its cgroup's quota.
CPU_LIMIT_ENV = "FACEBLUR_CPU_LIMIT_MILLICORES"
CPU_REQUEST_ENV = "FACEBLUR_CPU_REQUEST_MILLICORES"

# Cores one pipeline keeps busy. On a CPU detection is most of a pipeline's work: one core each
# (two single-lane pipelines on two cores are no slower than one two-lane pipeline, bench/).
# Beside a GPU a pipeline decodes, resizes, anonymizes and encodes: about 1.3 cores at 22 frames/s
# of 1080p with x264 veryfast (docs/performance.md), so 1.5 leaves the detector's feeding its share.
CPU_CORES_PER_PIPELINE = 1.0
GPU_CORES_PER_PIPELINE = 1.5
MAX_PIPELINES = 32  # each holds its frames in flight: about 60 MiB at 1080p (docs/performance.md)


def pipelines_for(cores: float | None, on_gpu: bool) -> int:
    """Pipelines for a pod of `cores` CPUs (None: unknown, one pipeline)."""
    if cores is None or cores <= 0:
        return 1
    per = GPU_CORES_PER_PIPELINE if on_gpu else CPU_CORES_PER_PIPELINE
    return max(1, min(MAX_PIPELINES, math.floor(cores / per + 1e-9)))


# One Indexed-Job index runs a contiguous group of chunks, as many as its pod runs pipelines: the
# operator sets the group size with this flag and the Job's completions to `index_count`; the worker
# applies `index_chunks` to JOB_COMPLETION_INDEX. A retried index redoes only its unfinished chunks.
CHUNKS_PER_INDEX_FLAG = "--chunks-per-index"


def index_count(chunks: int, per_index: int) -> int:
    """The worker Job's completions for `chunks` chunks, `per_index` to an index (the last may have fewer)."""
    return -(-chunks // per_index)


def index_chunks(index: int, per_index: int, chunks: int) -> range:
    """The chunks of Job index `index`: [index * per_index, min((index + 1) * per_index, chunks))."""
    return range(index * per_index, min((index + 1) * per_index, chunks))
