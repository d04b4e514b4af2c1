"""Inference runtimes: which to ask for, and sessions built with them.

onnxruntime's execution providers, and OpenVINO for CenterFace when asked for (bfloat16 on CPUs
with AMX or AVX-512 BF16, about 2x faster there). The choice is a pure function of the request and
of what this installation offers, so it is testable without a GPU; the session factory logs the
runtime actually used once per process (a GPU image silently falling back to CPU is the failure to notice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import onnxruntime

from faceblur.errors import ModelError, reason
from faceblur.openvino_session import OPENVINO, OpenVinoSession, openvino_installed, openvino_runs_bf16
from faceblur.options import ExecutionProvider

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
AUTO_ORDER = (TENSORRT, CUDA, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA)

_logged: set[str] = set()
_logged_lock = threading.Lock()


def choose_providers(requested: ExecutionProvider, available: Sequence[str]) -> list[str]:
    """Runtimes to try, best first, CPU kept last as the fallback (and SCRFD's CPU runtime).

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
        raise ModelError(
            f"execution provider {requested.value} ({name}) is not available; available: {_list(available)}"
        )
    fallbacks = [CUDA, CPU] if name == TENSORRT else [CPU]
    return [name, *(p for p in fallbacks if p != name and p in available)]


def available_providers() -> list[str]:
    return [*onnxruntime.get_available_providers(), *([OPENVINO] if openvino_installed() else [])]


def chosen_providers(requested: ExecutionProvider) -> list[str]:
    return choose_providers(requested, available_providers())


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


def create_session(
    model: Path, requested: ExecutionProvider, threads: int | None, networks: int = 1
) -> onnxruntime.InferenceSession | OpenVinoSession:
    providers = chosen_providers(requested)
    if providers[0] == OPENVINO:
        compiled = OpenVinoSession(model, checked_threads(threads), networks)
        log_provider_once(f"{OPENVINO} ({'bfloat16' if openvino_runs_bf16() else 'float32'})")
        return compiled
    try:
        session = onnxruntime.InferenceSession(
            str(model), session_options(threads), providers=onnxruntime_providers(providers)
        )
    except Exception as exc:  # onnxruntime raises its own exception classes
        raise ModelError(f"cannot load model {model}: {reason(exc)}") from exc
    log_provider_once(session.get_providers()[0])
    return session


def log_provider_once(provider: str) -> None:
    with _logged_lock:
        if provider in _logged:
            return
        _logged.add(provider)
    log.info("running inference on %s", provider)


def _list(names: Sequence[str]) -> str:
    return ", ".join(names) or "none"
