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
from dataclasses import dataclass
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# Each lane holds its own onnxruntime activations (about 100 MB at 960x544) and a batch of
# frames: past 4 lanes, a larger budget gives each lane intra-op threads instead.
MAX_LANES = 4


@dataclass(frozen=True)
class ThreadPlan:
    lanes: int  # detection threads, each running whole batches
    intra_op: int  # onnxruntime intra-op threads per call
    decoder: int  # FFmpeg decoder threads
    encoder: int  # x264 threads (1: encodes in the pipeline's own render thread)
    on_gpu: bool = False

    def lane_batch(self, batch_size: int) -> int:
        """Frames per lane item: on a CPU the batch is shared out among the lanes.

        onnxruntime on a CPU runs at most a few frames per call anyway (CenterFace's
        MAX_CPU_BATCH_PIXELS: one at 960x544), so smaller items cost no call, and they keep
        the lanes busy to the end of a chunk instead of one lane finishing a whole batch
        alone. A GPU gets whole batches.
        """
        if self.on_gpu:
            return max(1, batch_size)
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
        return max(1, batch_size) if self.on_gpu else 1


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


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a pod's limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = quota_cores(cpu_max.read_text()) if cpu_max.is_file() else None
    return max(1, min(cores, quota) if quota else cores)


def quota_cores(cpu_max: str) -> int | None:
    """Whole cores of a cgroup v2 `cpu.max` ("max 100000" or "150000 100000": 2), None without a quota."""
    fields = cpu_max.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        return max(1, math.ceil(int(fields[0]) / int(fields[1])))
    except (ValueError, ZeroDivisionError):
        return None
