"""SCRFD through insightface: slower and more accurate than CenterFace, from a local model file.

insightface's SCRFD takes one image at a time (it letterboxes each frame into the input
size), so a batch is a loop here; the model file and its execution providers are ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from faceblur_contract.enums import ExecutionProvider

from faceblur.detectors.base import Boxes, Image, clip_boxes, empty_boxes, round_input_size
from faceblur.detectors.providers import (
    chosen_providers,
    onnxruntime_providers,
    record_runtime,
    session_options,
)
from faceblur.errors import ModelError, reason

DEFAULT_THRESHOLD = 0.5  # insightface's default det_thresh
DEFAULT_INPUT_SIZE = (640, 640)  # insightface's usual detection size


class ScrfdDetector:
    default_threshold = DEFAULT_THRESHOLD

    def __init__(
        self,
        model_path: Path,
        requested: ExecutionProvider,
        threads: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        scale: tuple[int, int] | None = None,
        name: str = "scrfd",
    ) -> None:
        self.threshold = threshold
        self.letterbox_size = round_input_size(*(scale or DEFAULT_INPUT_SIZE))
        self._name = name
        self._model = _load(model_path, onnxruntime_providers(chosen_providers(requested)), threads)
        self._model.prepare(0, input_size=self.letterbox_size, det_thresh=threshold)
        record_runtime(requested, self._model.session.get_providers()[0])

    @property
    def name(self) -> str:
        return self._name

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]:
        results = []
        for frame in frames:
            found, _landmarks = self._model.detect(
                frame, input_size=self.letterbox_size, det_thresh=self.threshold
            )
            boxes = np.asarray(found, dtype=np.float32).reshape(-1, 5) if len(found) else empty_boxes()
            results.append(clip_boxes(boxes, frame.shape[1], frame.shape[0]))
        return results


def _load(model_path: Path, providers: Sequence[str], threads: int | None) -> Any:
    from insightface.model_zoo import get_model  # heavy import: only when SCRFD is asked for

    if model_path.suffix != ".onnx":
        raise ModelError(f"SCRFD model must be an .onnx file: {model_path}")
    try:
        model = get_model(str(model_path), providers=list(providers), sess_options=session_options(threads))
    except Exception as exc:  # insightface and onnxruntime raise many types; the cause goes to the user
        raise ModelError(f"cannot load SCRFD model {model_path}: {reason(exc)}") from exc
    if model is None or getattr(model, "taskname", None) != "detection":
        raise ModelError(f"{model_path} is not an SCRFD detection model")
    return model
