"""One thread budget per worker, shared by the decoder, the detector, the encoder and the pipeline.

On a small machine every library's own thread pool at once (FFmpeg's frame threads, x264's
frame and lookahead threads, onnxruntime's intra-op pool, OpenCV's pool) oversubscribes
the cores: a parallel loop waits for its slowest thread whenever another library holds a
core, and the cores idle. Here detection runs in `lanes` threads, each an independent
single-threaded onnxruntime call on its own batch (no intra-op barrier), the decoder and
x264 get threads only where the budget is large enough for their stage to be the
bottleneck, and OpenCV runs in its caller's thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from faceblur_contract.pods import CPU_LIMIT_ENV, CPU_REQUEST_ENV, pipelines_for

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1: cpu.cfs_quota_us and cpu.cfs_period_us
# A shared GPU detector gathers its pipelines' frames for at most this long: a fraction of one
# 32-frame batch's inference, so a lone pipeline loses little and several fill each batch.
GPU_MAX_WAIT_S = 0.005
# The GPU's batches are bounded in pixels too, at the batch size at 960x544 (what the docs' memory
# figures are for): a detector left at the frame's own size runs 1080p frames in quarter batches
# instead of holding four times the memory.
GPU_BATCH_FRAME_PIXELS = 960 * 544
# Each lane holds its own onnxruntime activations (about 100 MB at 960x544) and a batch of
# frames: past 4 lanes, a larger budget gives each lane intra-op threads instead.
MAX_LANES = 4


@dataclass(frozen=True)
class Batching:
    """How a detector shared by several pipelines gathers their frames (`detectors.batching`)."""

    max_batch: int  # frames per inference, at most (one call larger than this runs alone)
    max_wait_s: float  # how long the gathering waits for more calls to fill a batch
    runners: int  # inferences at once
    max_pixels: int | None = None  # pixels per inference, at most (None: no bound): memory held


@dataclass(frozen=True)
class ThreadPlan:
    lanes: int  # detection threads, each running whole batches
    intra_op: int  # onnxruntime intra-op threads per call
    decoder: int  # FFmpeg decoder threads
    encoder: int  # x264 threads (1: encodes in the pipeline's own render thread)
    on_gpu: bool = False
    sharing: int = 1  # pipelines whose frames a GPU batch gathers (`PodPlan`)

    def lane_batch(self, batch_size: int) -> int:
        """Frames per lane item: on a CPU the batch is shared out among the lanes.

        onnxruntime on a CPU runs at most a few frames per call anyway (CenterFace's
        MAX_CPU_BATCH_PIXELS: one at 960x544), so smaller items cost no call, and they keep
        the lanes busy to the end of a chunk instead of one lane finishing a whole batch
        alone. A GPU gets whole batches, gathered from the pipelines that share it: each sends its
        share, so a batch holds frames of them all and each pipeline holds fewer frames in flight.
        """
        if self.on_gpu:
            return max(1, -(-batch_size // self.sharing))
        return max(1, -(-batch_size // self.lanes))

    @property
    def networks(self) -> int:
        """Compiled networks OpenVINO gives the lanes (each network runs one inference at a time):
        one fewer than the lanes, so the render thread (x264) keeps a core. Measured on two cores,
        where the two lanes then take turns at one network: a network each, two inferences at once,
        cost every stage 3-8% more CPU time and the chunk 5% more wall time."""
        return max(1, self.lanes - 1)

    def check_batch(self, batch_size: int) -> int:
        """Frames per verification call: a GPU gets whole batches; on a CPU one frame a call (what
        onnxruntime runs per call there anyway), so the check keeps pace with the encoder instead of
        holding a batch of work back for the end of the chunk, when only the encoder is left."""
        return max(1, -(-batch_size // self.sharing)) if self.on_gpu else 1


def plan_threads(budget: int, on_gpu: bool = False) -> ThreadPlan:
    """Threads for a worker allowed `budget` busy cores.

    Per 1080p frame at 960x540 on a CPU, detection is about 60% of the work and x264
    `veryfast` about 25%, both in single-threaded figures; the render thread (smoothing,
    anonymizing, encoding) becomes the limit once about 3 cores detect, so x264 gets
    threads from 4 cores up, and the decoder from 6. On a GPU the detector needs CPU only
    to feed it: two lanes keep one batch on the device while the next is prepared.
    """
    budget = max(1, budget)
    lanes = min(2, budget) if on_gpu else min(MAX_LANES, budget)
    intra_op = 1 if on_gpu else max(1, budget // lanes)
    encoder = 1 if budget <= 3 else max(2, budget // 3)
    decoder = 1 if budget <= 5 else 2
    return ThreadPlan(lanes, intra_op, decoder, encoder, on_gpu=on_gpu)


def available_cores(cpu_max: Path = CGROUP_CPU_MAX, v1: Path = CGROUP_V1_CPU) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a pod's limit)."""
    cores = _affinity()
    quota = cgroup_quota(cpu_max, v1)
    return max(1, min(cores, quota) if quota else cores)


def pod_cores(
    environ: Mapping[str, str] = os.environ, cpu_max: Path = CGROUP_CPU_MAX, v1: Path = CGROUP_V1_CPU
) -> int:
    """The cores a pod is given: its CPU limit, else its request (both from the Downward API, as the
    operator sets them), else its cgroup's quota, else its CPU affinity; never more than the affinity.
    A request alone is a share of a node, not a cap: the pod plans for what it was promised."""
    cores = _affinity()
    for name in (CPU_LIMIT_ENV, CPU_REQUEST_ENV):
        millicores = _millicores(environ.get(name))
        if millicores:
            return max(1, min(cores, math.ceil(millicores / 1000)))
    quota = cgroup_quota(cpu_max, v1)
    return max(1, min(cores, quota) if quota else cores)


def _millicores(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cgroup_quota(cpu_max: Path = CGROUP_CPU_MAX, v1: Path = CGROUP_V1_CPU) -> int | None:
    """Whole cores of the cgroup's CPU quota, v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`); None: none."""
    if cpu_max.is_file():
        return quota_cores(cpu_max.read_text())
    quota, period = v1 / "cpu.cfs_quota_us", v1 / "cpu.cfs_period_us"
    if quota.is_file() and period.is_file():
        return quota_cores(f"{quota.read_text().strip()} {period.read_text().strip()}")
    return None


def quota_cores(cpu_max: str) -> int | None:
    """Whole cores of a cgroup v2 `cpu.max` ("max 100000" or "150000 100000": 2), None without a quota."""
    fields = cpu_max.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
        return max(1, math.ceil(quota / period)) if quota > 0 else None  # v1 writes -1 for none
    except (ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class PodPlan:
    """A worker's chunk pipelines, each on its own thread plan, sharing one detector."""

    pipelines: int
    per_pipeline: ThreadPlan
    batching: Batching  # how the shared detector gathers the pipelines' frames
    verifier_runners: int  # the verifier's inferences at once (GPU: one batch in memory)

    @property
    def on_gpu(self) -> bool:
        return self.per_pipeline.on_gpu

    @property
    def networks(self) -> int:
        """OpenVINO's compiled networks for all the pipelines' lanes (`ThreadPlan.networks`)."""
        return max(1, self.pipelines * self.per_pipeline.lanes - 1)


def plan_pod(
    budget: int, on_gpu: bool, batch_size: int, pipelines: int | None = None, most: int | None = None
) -> PodPlan:
    """`pipelines` (None: as many as `budget` cores keep busy, `pipelines_for`; at most `most`, the
    chunks there are to process) sharing `budget`.

    On a GPU the detector gets whole batches of up to `batch_size` frames from all the pipelines,
    two at once; on a CPU every lane of every pipeline its own inference, one request at a time
    (a CPU gains nothing from larger batches, and each pipeline's batches are those it would run alone).
    """
    budget = max(1, budget)
    count = pipelines if pipelines is not None else pipelines_for(budget, on_gpu)
    count = max(1, min(count, most) if most is not None else count)
    per = plan_threads(max(1, budget // count), on_gpu)
    if on_gpu:
        per = replace(per, sharing=count)
        batching = Batching(
            max_batch=max(1, batch_size),
            max_wait_s=GPU_MAX_WAIT_S,
            runners=2,
            max_pixels=max(1, batch_size) * GPU_BATCH_FRAME_PIXELS,
        )
        return PodPlan(count, per, batching, verifier_runners=1)
    batching = Batching(max_batch=1, max_wait_s=0.0, runners=count * per.lanes)
    return PodPlan(count, per, batching, verifier_runners=count)
