"""The verification pass over one processed chunk: re-detect on the frames given to the encoder, report.

Each chunk worker runs it inside its own pipeline, in a thread beside the encoder, on the sampled
frames exactly as they are handed to x264 (anonymized, with any score drawing), before publishing
the chunk's result; compose merges the reports (`faceblur.verify.residual.merge`). Checking the encoder's
input instead of decoding its output costs no second decode of the whole chunk (a quarter of the
pass) and no pass after the pipeline; what the check looks for, a face the detectors missed, is
the same in both (x264 at the job's CRF does not make a blurred face sharp). The detectors are the
job's own, made more sensitive (`faceblur.verify.residual`): thresholds times the threshold factor,
inference sizes times the scale factor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import cv2
import numpy as np
from faceblur_contract.enums import DetectorName
from faceblur_contract.options import DetectorSpec, ProcessOptions, VerifyOptions
from faceblur_contract.records import ResidualBox, ResidualFrame, VerificationReport

from faceblur.anonymization.regions import kept_on_display
from faceblur.detectors import CenterFaceDetector, ScrfdDetector, UnionDetector, shared_detector
from faceblur.detectors.scrfd import DEFAULT_INPUT_SIZE as SCRFD_INPUT_SIZE
from faceblur.job.manifest import Chunk, Manifest, VideoInfo, frame_seconds
from faceblur.media.orientation import normalize_rotation, to_display
from faceblur.process.pipeline import batches
from faceblur.verify.residual import (
    describe,
    finer_scale,
    residual_boxes,
    residual_frame,
    sensitive_threshold,
    summarize,
)

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
            threshold=sensitive_threshold(
                spec.threshold if spec.threshold is not None else _DEFAULT_THRESHOLDS[spec.name],
                check.threshold_factor,
            ),
            scale=finer_scale(spec.scale or _DEFAULT_SIZES[spec.name] or upright, check.scale_factor),
        )
        for spec in specs
    ]


def upright_size(video: VideoInfo) -> tuple[int, int]:
    turned = normalize_rotation(video.rotation)
    return (video.height, video.width) if turned in (90, 270) else (video.width, video.height)


def sensitive_detector(manifest: Manifest, options: ProcessOptions, threads: int | None) -> UnionDetector:
    specs = sensitive_specs(options.detectors, upright_size(manifest.video), options.verification)
    return shared_detector(tuple(specs), options.execution_provider, threads)


def tracking_detector(manifest: Manifest, options: ProcessOptions, threads: int | None) -> UnionDetector:
    """The check's detectors for the fix-up's crops: as sensitive, at each crop's own size (the
    fix-up scales a crop by the scale factor itself, so a face is seen at the check's scale)."""
    specs = sensitive_specs(options.detectors, upright_size(manifest.video), options.verification)
    return shared_detector(tuple(replace(s, scale=None) for s in specs), options.execution_provider, threads)


def verify_chunk(
    frames: Iterable[tuple[int, np.ndarray]],
    chunk: Chunk,
    manifest: Manifest,
    options: ProcessOptions,
    detector: UnionDetector,
    per_call: int = 1,
    on_checked: Callable[[int, list[ResidualBox]], None] | None = None,
) -> VerificationReport:
    """Check one chunk's sampled frames (`residual.is_sampled`): frame number, BGR image as encoded
    (as stored: the rotation is applied here), `per_call` frames per detector call. `on_checked`
    hears each frame's candidates (none too) as soon as it is judged (the fix-up waits on it). The
    summary's seconds are the time spent checking, not the waits for the pipeline's next frame."""
    busy = 0.0
    check = options.verification
    rotation = normalize_rotation(manifest.video.rotation)
    times = frame_seconds(chunk, manifest.video)
    residual: list[ResidualFrame] = []
    checked = 0
    upright = ((number, to_display(image, rotation)) for number, image in frames)
    for batch in batches(upright, max(1, per_call)):
        started = time.monotonic()
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
            boxes = residual_boxes(gray, detections, check.threshold_factor)
            if on_checked is not None:
                on_checked(number, boxes)
            frame = residual_frame(number, times[number - chunk.first_frame], boxes)
            if frame is not None:
                residual.append(frame)
        busy += time.monotonic() - started
    summary = summarize(checked, residual, busy)
    if summary.residual_frames:
        log.warning("chunk %d: verification %s", chunk.index, describe(summary))
    return VerificationReport(
        frames=chunk.frame_count,
        every=check.every,
        threshold_factor=check.threshold_factor,
        scale_factor=check.scale_factor,
        detectors=detector.names,
        summary=summary,
        residual=residual,
    )
