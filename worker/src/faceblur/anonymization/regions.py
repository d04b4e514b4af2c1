"""Where the fixed regions of the options fall on one stored frame.

Regions are given relative to the displayed frame (`faceblur_contract.regions`), so they are turned
with the manifest's rotation onto the stored pixels that are decoded, anonymized and encoded. A
blur region is rounded outwards to whole pixels and a keep region inwards: what is in doubt is
anonymized. A frame's time is its exact presentation time from the manifest (`manifest.frame_seconds`), so
a chunk worker and a whole-video run put a time-limited region on the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from faceblur_contract.regions import Region

from faceblur.anonymization.anonymize import Rect
from faceblur.job.manifest import Box
from faceblur.media.orientation import normalize_rotation, rect_to_stored


@dataclass(frozen=True)
class FrameRegions:
    """The regions active on one frame, in stored pixels (x1, y1, x2, y2; x2/y2 exclusive)."""

    keep: tuple[Rect, ...] = ()
    blur: tuple[Rect, ...] = ()

    def keeps(self, box: Box) -> bool:
        """Whether a face box's centre lies in a keep region (the face is meant to stay visible)."""
        cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
        return any(x1 <= cx < x2 and y1 <= cy < y2 for x1, y1, x2, y2 in self.keep)

    def hides(self, box: Box) -> bool:
        """Whether a face box lies wholly inside one blur region (nothing of it can show)."""
        return any(
            x1 <= box.x1 and y1 <= box.y1 and box.x2 <= x2 and box.y2 <= y2 for x1, y1, x2, y2 in self.blur
        )


@dataclass(frozen=True)
class RegionMap:
    """The options' regions for frames of one stored size and rotation."""

    keep: tuple[Region, ...]
    blur: tuple[Region, ...]
    rotation: int
    width: int  # stored (decoded) size
    height: int

    def at(self, seconds: float) -> FrameRegions:
        return FrameRegions(
            keep=self._rects(self.keep, seconds, False), blur=self._rects(self.blur, seconds, True)
        )

    def _rects(self, regions: tuple[Region, ...], seconds: float, outward: bool) -> tuple[Rect, ...]:
        active = (r for r in regions if r.active(seconds))
        rects = (stored_rect(r, self.rotation, self.width, self.height, outward=outward) for r in active)
        return tuple(rect for rect in rects if rect is not None)


def stored_rect(region: Region, rotation: int, width: int, height: int, *, outward: bool) -> Rect | None:
    """A displayed-frame region as a rectangle of stored pixels; None when it covers no whole pixel."""
    turned = normalize_rotation(rotation)
    shown_w, shown_h = (height, width) if turned in (90, 270) else (width, height)
    shown = (
        region.left * shown_w,
        region.top * shown_h,
        (region.left + region.width) * shown_w,
        (region.top + region.height) * shown_h,
    )
    x1, y1, x2, y2 = rect_to_stored(shown, turned, width, height)
    # rounded to 1e-6 first so that float noise (0.3 * 320 = 95.99999999999999) cannot move a pixel
    low, high = (math.floor, math.ceil) if outward else (math.ceil, math.floor)
    left, top = max(0, low(round(x1, 6))), max(0, low(round(y1, 6)))
    right, bottom = min(width, high(round(x2, 6))), min(height, high(round(y2, 6)))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def kept_on_display(
    regions: Sequence[Region], seconds: float, size: tuple[int, int], box: Sequence[float]
) -> bool:
    """Whether a box of the displayed frame (size: width, height) has its centre in a keep region
    active at `seconds`: the verification pass looks at upright frames, and a kept face is no residue."""
    (width, height), (x1, y1, x2, y2) = size, box[:4]
    x, y = (x1 + x2) / 2, (y1 + y2) / 2
    return any(
        r.active(seconds)
        and r.left * width <= x < (r.left + r.width) * width
        and r.top * height <= y < (r.top + r.height) * height
        for r in regions
    )


def region_map(
    keep: Sequence[Region], blur: Sequence[Region], rotation: int, width: int, height: int
) -> RegionMap | None:
    """None when there is no region at all (the common case costs nothing per frame)."""
    if not keep and not blur:
        return None
    return RegionMap(tuple(keep), tuple(blur), normalize_rotation(rotation), width, height)
