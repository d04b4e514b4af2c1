"""The verification pass over one processed chunk: decode what was encoded, re-detect, report.

Each chunk worker runs it on its own processed chunk before publishing the chunk's result (so the
output is verified as it will be published, chunk by chunk, with no coordination), and compose
merges the reports (`faceblur.verify.merge`). The detectors are the job's own, made more sensitive
(`faceblur.verify`): thresholds times the threshold factor, inference sizes times the scale factor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
from faceblur_contract.options import VerifyOptions
from faceblur_contract.records import ResidualFrame, VerificationReport

from faceblur import verify
from faceblur.codec import decode_frames, to_bgr
from faceblur.detectors import CenterFaceDetector, ScrfdDetector, UnionDetector, build_detector
from faceblur.detectors.scrfd import DEFAULT_INPUT_SIZE as SCRFD_INPUT_SIZE
from faceblur.manifest import Chunk, Manifest, VideoInfo, frame_seconds
from faceblur.options import DetectorName, DetectorSpec, ProcessOptions
from faceblur.orientation import normalize_rotation, to_display
from faceblur.regions import kept_on_display

log = logging.getLogger(__name__)

_DEFAULT_THRESHOLDS = {
    DetectorName.CENTERFACE: CenterFaceDetector.default_threshold,
    DetectorName.SCRFD: ScrfdDetector.default_threshold,
}
_DEFAULT_SIZES: dict[DetectorName, tuple[int, int] | None] = {
    DetectorName.CENTERFACE: None,  # the frame's own size
    DetectorName.SCRFD: SCRFD_INPUT_SIZE,  # its letterbox, whatever the frame's size
}


def sensitive_specs(
    specs: Sequence[DetectorSpec], upright: tuple[int, int], check: VerifyOptions
) -> list[DetectorSpec]:
    """The job's detectors at the verifier's lower threshold and finer inference size (each
    detector's own size times the factor: CenterFace's default is the frame, SCRFD's its letterbox)."""
    return [
        replace(
            spec,
            thresh=verify.sensitive_threshold(
                spec.thresh if spec.thresh is not None else _DEFAULT_THRESHOLDS[spec.name],
                check.threshold_factor,
            ),
            scale=verify.finer_scale(spec.scale or _DEFAULT_SIZES[spec.name] or upright, check.scale_factor),
        )
        for spec in specs
    ]


def upright_size(video: VideoInfo) -> tuple[int, int]:
    turned = normalize_rotation(video.rotation)
    return (video.height, video.width) if turned in (90, 270) else (video.width, video.height)


def sensitive_detector(manifest: Manifest, options: ProcessOptions, threads: int | None) -> UnionDetector:
    specs = sensitive_specs(options.detectors, upright_size(manifest.video), options.verify)
    return build_detector(specs, options.execution_provider, threads)


def verify_processed(
    processed: Path, chunk: Chunk, manifest: Manifest, options: ProcessOptions, threads: int | None
) -> VerificationReport | None:
    """The chunk's verification report, or None when verification is off."""
    if not options.verify.enabled:
        return None
    detector = sensitive_detector(manifest, options, threads)
    return verify_chunk(processed, chunk, manifest, options, detector)


def verify_chunk(
    processed: Path, chunk: Chunk, manifest: Manifest, options: ProcessOptions, detector: UnionDetector
) -> VerificationReport:
    """Check the sampled frames of one processed chunk file (decoded as it will be published)."""
    started = time.monotonic()
    check = options.verify
    rotation = normalize_rotation(manifest.video.rotation)
    times = frame_seconds(chunk, manifest.video)
    residual: list[ResidualFrame] = []
    checked = 0
    for batch in _sampled_batches(processed, chunk, check.every, max(1, options.batch_size), rotation):
        found = detector.detect_each([image for _, image in batch])
        for (number, image), per_detector in zip(batch, found, strict=True):
            checked += 1
            detections = [
                (float(x1), float(y1), float(x2), float(y2), float(score), name)
                for name, boxes in per_detector.items()
                for x1, y1, x2, y2, score in boxes.tolist()
            ]
            seconds, shown = times[number - chunk.first_frame], (image.shape[1], image.shape[0])
            kept = options.keep_regions  # a face the user keeps sharp on purpose is no residue
            detections = [d for d in detections if not kept_on_display(kept, seconds, shown, d[:4])]
            gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
            boxes = verify.residual_boxes(gray, detections, check.threshold_factor)
            frame = verify.residual_frame(number, times[number - chunk.first_frame], boxes)
            if frame is not None:
                residual.append(frame)
    summary = verify.summarize(checked, residual, time.monotonic() - started)
    if summary.residual_frames:
        log.warning("chunk %d: verification %s", chunk.index, verify.describe(summary))
    return VerificationReport(
        frames=chunk.frame_count,
        every=check.every,
        threshold_factor=check.threshold_factor,
        scale_factor=check.scale_factor,
        detectors=detector.names,
        summary=summary,
        residual=residual,
    )


def _sampled_batches(
    path: Path, chunk: Chunk, every: int, size: int, rotation: int
) -> Iterator[list[tuple[int, np.ndarray]]]:
    """(frame number, upright BGR image) of the sampled frames, `size` at a time."""
    batch: list[tuple[int, np.ndarray]] = []
    frames: Iterator[av.VideoFrame] = decode_frames(path)
    for number, frame in zip(range(chunk.first_frame, chunk.last_frame + 1), frames, strict=False):
        if not verify.is_sampled(number, every):
            continue
        batch.append((number, to_display(to_bgr(frame), rotation)))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
