"""Scratch space of the worker and compose pods, from the input's size (the split's record).

Pods write only to their `scratch` emptyDir (the root filesystem is read-only), so its size is what
they need of the node's ephemeral storage: requested, so the scheduler puts a pod only where it fits,
and bounded (`sizeLimit`), so a pod that outgrows it is evicted instead of filling the node's disk.

A worker pod holds one source chunk, its processed copy and, with debug, a debug copy; compose holds
every processed chunk, the audio and the output, and with debug the debug chunks and video. A
re-encoded split stays within about 1.5x the input (faceblur.job.split) and a processed chunk can
exceed a low-bit-rate input's share, so each copy counts at twice its share of the input, plus a
margin for the model runtime's temporary files and the muxers' buffers.
"""

from __future__ import annotations

import math

from faceblur_operator.naming import Stage

EPHEMERAL_STORAGE = "ephemeral-storage"  # the resource a pod's emptyDir takes from its node
MIB = 1024**2
GIB = 1024**3
MARGIN_BYTES = 256 * MIB
COPY_FACTOR = 2


def work_bytes(input_bytes: int, chunks: int, debug: bool) -> int:
    """One worker pod's scratch: its chunk, the processed copy, the debug copy."""
    share = math.ceil(input_bytes / max(1, chunks))
    return MARGIN_BYTES + COPY_FACTOR * share * (3 if debug else 2)


def compose_bytes(input_bytes: int, debug: bool) -> int:
    """The compose pod's scratch: every processed chunk and the output (with debug: twice more)."""
    return MARGIN_BYTES + COPY_FACTOR * input_bytes * (4 if debug else 2)


def quantity(size: int) -> str:
    """A Kubernetes quantity in whole MiB, rounded up."""
    return f"{math.ceil(size / MIB)}Mi"


def human(size: int) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{math.ceil(size / MIB)} MiB"


def scratch_bytes(stage: Stage, input_bytes: int | None, chunks: int, debug: bool) -> int | None:
    """The scratch space a `stage` pod needs for an input of `input_bytes`; None where the size is
    unknown (an older worker's split record) and for split and cleanup, which run before it is known
    or need none."""
    if input_bytes is None:
        return None
    if stage == Stage.WORK:
        return work_bytes(input_bytes, chunks, debug)
    if stage == Stage.COMPOSE:
        return compose_bytes(input_bytes, debug)
    return None
