"""onnxruntime execution providers: which to ask for, and sessions built with them.

The choice is a pure function of the request and of what this onnxruntime build offers,
so it is testable without a GPU; the session factory logs the provider actually used
once per process (a GPU image silently falling back to CPU is the failure to notice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import onnxruntime

from faceblur.errors import ModelError
from faceblur.options import ExecutionProvider

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

PROVIDER_NAMES = {
    ExecutionProvider.CPU: CPU,
    ExecutionProvider.CUDA: CUDA,
    ExecutionProvider.TENSORRT: TENSORRT,
}
AUTO_ORDER = (TENSORRT, CUDA, CPU)

_logged: set[str] = set()
_logged_lock = threading.Lock()


def choose_providers(requested: ExecutionProvider, available: Sequence[str]) -> list[str]:
    """Providers to hand onnxruntime, best first, CPU kept last as its own fallback."""
    if requested is ExecutionProvider.AUTO:
        chosen = [name for name in AUTO_ORDER if name in available]
        if not chosen:
            raise ModelError(
                f"onnxruntime offers none of {', '.join(AUTO_ORDER)}; available: {_list(available)}"
            )
        return chosen
    name = PROVIDER_NAMES[requested]
    if name not in available:
        raise ModelError(
            f"execution provider {requested.value} ({name}) is not available; available: {_list(available)}"
        )
    fallbacks = [CUDA, CPU] if name == TENSORRT else [CPU]
    return [name, *(p for p in fallbacks if p != name and p in available)]


def available_providers() -> list[str]:
    return list(onnxruntime.get_available_providers())


def session_options(threads: int | None) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # old exports warn about unused initializers at every load
    # Idle inference threads sleep instead of spinning: decode and encode run beside them,
    # and spinning burned 10-15% more CPU per frame in the chunk pipeline.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise ModelError(f"thread count must be at least 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def create_session(
    model: Path | bytes, requested: ExecutionProvider, threads: int | None
) -> onnxruntime.InferenceSession:
    providers = choose_providers(requested, available_providers())
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = onnxruntime.InferenceSession(source, session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception classes
        label = "model bytes" if isinstance(model, bytes) else str(model)
        raise ModelError(f"cannot load model {label}: {_first_line(exc)}") from exc
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
