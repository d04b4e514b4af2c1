"""Inference runtimes: which to ask for, sessions built with them, and the runtime actually in use.

onnxruntime's execution providers, and OpenVINO for CenterFace when asked for (bfloat16 on CPUs
with AMX or AVX-512 BF16, about 2x faster there). The choice is a pure function of the request and
of what this installation offers, so it is testable without a GPU.

A GPU runtime asked for by name (cuda, tensorrt: what the operator renders for GPU jobs) is never
given up for the CPU: where it is not offered, or onnxruntime falls back to the CPU while building
the session (it does so with a log line only), the worker fails with `GpuUnavailableError` naming
the cause (`faceblur.detectors.gpu`). `auto` takes CUDA where it starts, else the CPU, and the runtime in use
is what each chunk's result records (`runtime_in_use`). `auto` does not try TensorRT: the images
carry no TensorRT libraries, and its engines are built per input shape (minutes on first use), for
a detector that is not what limits a GPU worker (decoding and x264 are).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
from faceblur_contract.enums import ExecutionProvider

from faceblur.detectors.gpu import device_description, device_memory, gpu_facts, gpu_problem
from faceblur.detectors.openvino_session import (
    OPENVINO,
    OpenVinoSession,
    openvino_installed,
    openvino_runs_bf16,
)
from faceblur.errors import GpuUnavailableError, ModelError, reason
from faceblur.process.threadplan import available_cores

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

PROVIDER_NAMES = {
    ExecutionProvider.CPU: CPU,
    ExecutionProvider.OPENVINO: OPENVINO,
    ExecutionProvider.CUDA: CUDA,
    ExecutionProvider.TENSORRT: TENSORRT,
}
AUTO_ORDER = (CUDA, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA)

# The GPU memory a worker may use, in MiB (a MIG slice's or a time-sliced share; NVML's whole
# device otherwise). Split between the detector's arena and its verifier's, less the CUDA context
# and cuDNN's workspaces, which live outside onnxruntime's arenas.
GPU_MEMORY_ENV = "FACEBLUR_GPU_MEMORY_MIB"
GPU_HEADROOM = 1024 * 2**20
GPU_ARENAS = 2  # the detector's session and its verifier's
MIN_ARENA = 512 * 2**20


@dataclass(frozen=True)
class Runtime:
    """Where this process's inference runs: the provider onnxruntime (or OpenVINO) actually uses."""

    provider: str  # e.g. CUDAExecutionProvider, CPUExecutionProvider, OpenVINO (bfloat16)
    device: str  # e.g. "NVIDIA L4, 22.5 GiB" or "CPU, 2 cores"


_in_use: dict[str, Runtime] = {}
_in_use_lock = threading.Lock()


def choose_providers(requested: ExecutionProvider, available: Sequence[str]) -> list[str]:
    """Runtimes to try, best first: `auto` ends with the CPU; a runtime asked for by name comes with
    no CPU behind it, but for OpenVINO, which runs CenterFace only (SCRFD takes onnxruntime's CPU),
    and TensorRT has CUDA beside it. Empty: a GPU runtime asked for that is not offered.

    `auto` never takes OpenVINO: bfloat16 moves boxes by up to 2% and a blurred face's score by a
    few hundredths, so its output is not float32's (and without native bfloat16 it is slower than
    onnxruntime).
    """
    if requested is ExecutionProvider.AUTO:
        chosen = [name for name in AUTO_ORDER if name in available]
        if not chosen:
            raise ModelError(f"none of {', '.join(AUTO_ORDER)} is offered; available: {_list(available)}")
        return chosen
    name = PROVIDER_NAMES[requested]
    if name not in available:
        if name in GPU_PROVIDERS:
            return []
        raise ModelError(
            f"execution provider {requested.value} ({name}) is not available; available: {_list(available)}"
        )
    companion = {TENSORRT: CUDA, OPENVINO: CPU}.get(name)
    return [name, companion] if companion is not None and companion in available else [name]


def available_providers() -> list[str]:
    return [*onnxruntime.get_available_providers(), *([OPENVINO] if openvino_installed() else [])]


def chosen_providers(requested: ExecutionProvider) -> list[str]:
    """`choose_providers` for this installation; a GPU runtime it cannot offer is a GpuUnavailableError."""
    available = available_providers()
    chosen = choose_providers(requested, available)
    if not chosen:
        raise GpuUnavailableError(gpu_problem(gpu_facts(cuda_provider=CUDA in available)))
    return chosen


def gpu_required(requested: ExecutionProvider) -> bool:
    return PROVIDER_NAMES.get(requested) in GPU_PROVIDERS


def runs_on_gpu(providers: Sequence[str]) -> bool:
    return bool(providers) and providers[0] in GPU_PROVIDERS


def onnxruntime_providers(providers: Sequence[str]) -> list[str]:
    """The onnxruntime part of a choice: where OpenVINO cannot serve (SCRFD runs through insightface)."""
    return [name for name in providers if name != OPENVINO]


def checked_threads(threads: int | None) -> int | None:
    """A runtime's thread count, None for its own default; refused below 1 (both runtimes would read 0
    as "choose for me", which no caller means)."""
    if threads is not None and threads < 1:
        raise ModelError(f"thread count must be at least 1, got {threads}")
    return threads


def session_options(threads: int | None) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # old exports warn about unused initializers at every load
    # Idle inference threads sleep instead of spinning: decode and encode run beside them,
    # and spinning burned 10-15% more CPU per frame in the chunk pipeline.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = checked_threads(threads)
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def gpu_budget(environ: Mapping[str, str] = os.environ) -> int | None:
    """Bytes of GPU memory this worker may use: GPU_MEMORY_ENV, else the device's; None: unknown."""
    text = environ.get(GPU_MEMORY_ENV, "")
    if text.strip():
        try:
            return int(text) * 2**20
        except ValueError:
            raise ModelError(f"{GPU_MEMORY_ENV} must be a number of MiB, not {text!r}") from None
    return device_memory()


def cuda_options(budget: int | None) -> dict[str, str]:
    """The CUDA provider's arena settings: grown by what is asked for, never to the next power of two
    (a 3.1 GB batch would take 4 GB), and capped at the session's share of `budget`, so a larger
    batch than planned fails loudly in its session instead of taking a neighbour's memory."""
    options = {"arena_extend_strategy": "kSameAsRequested"}
    if budget is not None:
        options["gpu_mem_limit"] = str(max(MIN_ARENA, (budget - GPU_HEADROOM) // GPU_ARENAS))
    return options


def _with_options(providers: Sequence[str]) -> list[str | tuple[str, dict[str, str]]]:
    return [(name, cuda_options(gpu_budget())) if name == CUDA else name for name in providers]


def create_session(
    model: Path, requested: ExecutionProvider, threads: int | None, networks: int = 1
) -> onnxruntime.InferenceSession | OpenVinoSession:
    providers = chosen_providers(requested)
    if providers[0] == OPENVINO:
        compiled = OpenVinoSession(model, checked_threads(threads), networks)
        record_runtime(requested, f"{OPENVINO} ({'bfloat16' if openvino_runs_bf16() else 'float32'})")
        return compiled
    try:
        session = onnxruntime.InferenceSession(
            str(model), session_options(threads), providers=_with_options(onnxruntime_providers(providers))
        )
    except Exception as exc:  # onnxruntime raises its own exception classes
        raise ModelError(f"cannot load model {model}: {reason(exc)}") from exc
    record_runtime(requested, session.get_providers()[0])
    return session


def record_runtime(requested: ExecutionProvider, provider: str) -> Runtime:
    """Note the runtime a session got (logged once per process), refusing the CPU where a GPU
    runtime was asked for: onnxruntime falls back to it with no more than a log line."""
    if gpu_required(requested) and provider not in GPU_PROVIDERS:
        raise GpuUnavailableError(gpu_problem(gpu_facts(cuda_provider=CUDA in available_providers())))
    with _in_use_lock:
        known = _in_use.get(provider)
        if known is not None:
            return known
        runtime = Runtime(provider, _device(provider))
        _in_use[provider] = runtime
    log.info("running inference on %s (%s)", runtime.provider, runtime.device)
    return runtime


def runtime_in_use() -> Runtime | None:
    """The runtime this process's detectors run on; the GPU one where a GPU and a CPU are both used
    (SCRFD beside OpenVINO's CenterFace, say), None before any session."""
    with _in_use_lock:
        runtimes = list(_in_use.values())
    return next((r for r in runtimes if r.provider in GPU_PROVIDERS), runtimes[0] if runtimes else None)


def _device(provider: str) -> str:
    if provider in GPU_PROVIDERS:
        return device_description() or "a GPU NVML does not describe"
    cores = available_cores()
    return f"CPU, {cores} core{'s' if cores != 1 else ''}"


def _list(names: Sequence[str]) -> str:
    return ", ".join(names) or "none"
