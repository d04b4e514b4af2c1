"""Masking policy: what a chunk's frame is anonymized with besides its faces (the fixed regions at
the frame's time; the whole frame where fail-secure says a face may show unseen), and the frame
anonymized accordingly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import av
from faceblur_contract.options import ProcessOptions

from faceblur.anonymization.anonymize import FrameMasks, MaskStyle, anonymize_yuv
from faceblur.anonymization.drawing import draw_boxes
from faceblur.anonymization.regions import FrameRegions, RegionMap, region_map
from faceblur.job.manifest import Box, BoxSource, Chunk, Manifest, frame_seconds
from faceblur.media import colour
from faceblur.media.codec import StreamFacts, chroma_step, frame_from_planes, frame_with_drawing, yuv_planes
from faceblur.temporal.failsecure import FailSecure, LostFaces
from faceblur.temporal.hysteresis import Confirmations
from faceblur.temporal.smoothing import SmoothingParams


@dataclass(frozen=True)
class Masking:
    """What a chunk anonymizes besides its faces: fixed regions at each frame's time, and the
    fail-secure decisions (detection failed, face lost) made on the same confirmations."""

    regions: RegionMap | None
    times: Mapping[int, float]  # own frame number -> seconds from the video's first frame
    lost: LostFaces | None
    failed: set[int]

    @classmethod
    def of(
        cls,
        chunk: Chunk,
        manifest: Manifest,
        facts: StreamFacts,
        options: ProcessOptions,
        params: SmoothingParams,
        decisions: Confirmations,
        failed: set[int],
    ) -> Masking:
        rotation, size = manifest.video.rotation, (facts.width, facts.height)
        regions = region_map(options.keep_regions, options.blur_regions, rotation, *size)
        times = dict(enumerate(frame_seconds(chunk, manifest.video), start=chunk.first_frame))
        masking = cls(regions, times, None, failed)
        if not options.fail_secure:
            return masking
        rule = FailSecure(params, options.fail_secure_hold, *size)
        return replace(masking, lost=LostFaces(rule, decisions, masking.accounted))

    def at(self, number: int) -> FrameRegions:
        return self.regions.at(self.times[number]) if self.regions is not None else FrameRegions()

    def accounted(self, number: int, box: Box) -> bool:
        """Whether the regions of a frame keep or hide a face anyway (its loss changes nothing)."""
        regions = self.at(number)
        return regions.keeps(box) or regions.hides(box)

    def masks(self, number: int) -> tuple[FrameMasks, str | None, list[Box]]:
        """The frame's masks; why fail-secure anonymizes it whole (None: it does not); and the lost
        faces' last boxes, marked for the debug video."""
        why, lost = ("detection failed" if number in self.failed else None), []
        if why is None and self.lost is not None:
            lost = [b.model_copy(update={"source": BoxSource.LOST}) for b in self.lost.lost(number)]
            why = "face lost" if lost else None
        regions = self.at(number)
        return FrameMasks(whole=why is not None, keep=regions.keep, blur=regions.blur), why, lost


def anonymized(
    frame: av.VideoFrame,
    boxes: Sequence[Box],
    options: ProcessOptions,
    facts: StreamFacts,
    masks: FrameMasks | None = None,
) -> av.VideoFrame:
    """The frame with its faces anonymized; with `masks`, also the fixed regions and fail-secure.

    The frame's own samples are changed (4:2:0 or 4:4:4, 8 or 10 bits), never a converted copy."""
    masked = masks is not None and (masks.whole or masks.blur or (masks.keep and boxes))
    if not boxes and not masked:
        return frame
    style = MaskStyle(options.method, options.mask_shape, options.mask_scale, options.mosaic_blocks)
    coords = [(b.x1, b.y1, b.x2, b.y2) for b in boxes]
    planes = yuv_planes(frame)
    depth = colour.bit_depth(frame.format.name)
    anonymize_yuv(planes, chroma_step(frame), coords, style, masks or FrameMasks(), facts.full_range, depth)
    anonymized = frame_from_planes(planes, frame)
    return debug_frame(anonymized, boxes) if options.draw_scores else anonymized


def debug_frame(frame: av.VideoFrame, boxes: Sequence[Box]) -> av.VideoFrame:
    """The frame with its boxes drawn; a frame without boxes goes to the encoder untouched."""
    if not boxes:
        return frame
    return frame_with_drawing(frame, lambda image: draw_boxes(image, boxes))
