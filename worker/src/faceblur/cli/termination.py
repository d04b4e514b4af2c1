"""The termination log: one line of JSON that tells the operator how a pod's command ended.

Kubernetes copies the file (at most 4 KiB) into the container status, so the operator
learns results and failures without reading the object store.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["encode", "termination_path", "was_written", "write_termination_log"]

ENV = "FACEBLUR_TERMINATION_LOG"
KUBERNETES_DEFAULT = Path("/dev/termination-log")
MAX_BYTES = 4000  # below Kubernetes' 4096-byte limit


def termination_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """FACEBLUR_TERMINATION_LOG, else /dev/termination-log when it exists and is writable."""
    env = os.environ if environ is None else environ
    if env.get(ENV):
        return Path(env[ENV])
    if KUBERNETES_DEFAULT.exists() and os.access(KUBERNETES_DEFAULT, os.W_OK):
        return KUBERNETES_DEFAULT
    return None


def encode(record: Mapping[str, Any]) -> str:
    """One JSON line under the size limit; an over-long error message is shortened to fit."""
    data = dict(record)
    line = json.dumps(data, separators=(",", ":"))
    if len(line.encode()) > MAX_BYTES and isinstance(data.get("error"), str):
        excess = len(line.encode()) - MAX_BYTES
        data["error"] = data["error"][: max(0, len(data["error"]) - excess - 3)] + "..."
        line = json.dumps(data, separators=(",", ":"))
    if len(line.encode()) > MAX_BYTES:
        line = json.dumps({k: v for k, v in data.items() if not isinstance(v, list | dict)})
    return line


_written = False


def was_written() -> bool:
    """Whether this process has already written its termination line."""
    return _written


def write_termination_log(record: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    global _written
    _written = True
    path = termination_path(environ)
    if path is None:
        return
    try:
        path.write_text(encode(record) + "\n")
    except OSError as exc:
        log.warning("cannot write the termination log %s: %s", path, exc)
