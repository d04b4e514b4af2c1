"""The pipeline of one chunk's run: decode (own frames and halo) -> detect in batches, in lanes ->
smooth, anonymize and encode, with the verification check in a thread beside the encoder.

Work is pipelined in threads connected by bounded channels (`faceblur.process.pipeline`); the
outputs go to the run's scratch folder, from which `faceblur.process.publish` publishes them.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import VerificationReport

from faceblur.detectors import UnionDetector
from faceblur.errors import InvalidInputError
from faceblur.job.manifest import Box, Chunk, Manifest, frame_seconds
from faceblur.media.codec import (
    ENCODER_PIX_FMT,
    ChunkEncoder,
    StreamFacts,
    choose_encoder,
    nvenc_refusal,
    stream_facts,
    to_bgr,
)
from faceblur.process.framing import DetectImages, DetectionView, detect_fail_secure
from faceblur.process.halo import Segment, numbered
from faceblur.process.masking import Masking, anonymized, debug_frame
from faceblur.process.merge import RawDetections
from faceblur.process.pipeline import Channel, batches, ordered_lanes, run_stages
from faceblur.process.stageclock import StageClock
from faceblur.process.threadplan import ThreadPlan
from faceblur.temporal.hysteresis import Confirmations
from faceblur.temporal.smoothing import SmoothingParams, boxes_for_frame
from faceblur.verify.chunkpass import verify_chunk
from faceblur.verify.fixup import CheckResults, FixUp, Held
from faceblur.verify.residual import is_sampled

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class Work:
    """One decoded frame on its way through the pipeline."""

    number: int  # frame number in the whole input
    frame: av.VideoFrame | None  # kept only for the chunk's own frames
    detect_images: DetectImages  # upright BGR per size; dropped once used
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class _Own:
    number: int
    frame: av.VideoFrame


@dataclass
class Outcome:
    final: dict[int, list[Box]] = field(default_factory=dict)
    rejected: dict[int, list[Box]] = field(default_factory=dict)  # own frames' unconfirmed detections
    whole: dict[int, str] = field(default_factory=dict)  # own frames fail-secure anonymized whole: why
    failed: set[int] = field(default_factory=set)  # frames whose detection raised (fail-secure only)
    raw: RawDetections = field(default_factory=dict)
    frames_done: int = 0
    verification: VerificationReport | None = None  # None: verification is off
    encoder: str | None = None  # the H.264 encoder the chunk was written with (libx264, h264_nvenc)


@dataclass(frozen=True)
class Detectors:
    faces: UnionDetector  # the job's detectors
    verifier: UnionDetector | None  # their sensitive copies checking the output (None: no check)
    tracker: UnionDetector | None = None  # the verifier on crops, following what it finds (None: no fix-up)


@dataclass(frozen=True)
class ChunkRun:
    """One chunk's run, fixed before it starts: what it decodes, what detects and checks, the settings,
    and where its outputs go."""

    chunk: Chunk
    manifest: Manifest
    segments: tuple[Segment, ...]  # the halo and the chunk itself, in frame order (halo.plan_segments)
    files: Mapping[int, Path]  # chunk index -> its file, downloaded to `scratch`
    detectors: Detectors
    earlier: Mapping[int, list[Box]]  # an earlier pass's detections to merge with (merge.earlier_raw)
    params: SmoothingParams
    options: ProcessOptions
    plan: ThreadPlan
    scratch: Path  # where the processed (and debug) chunk is written before publishing
    progress: Progress | None = None


def run_chunk(run: ChunkRun) -> Outcome:
    facts = stream_facts(run.files[run.chunk.index])
    planned = run.manifest.output.video if run.manifest.output is not None else None
    if planned not in (None, facts.processing_pix_fmt):
        raise InvalidInputError(
            f"chunk {run.chunk.index} decodes as {facts.processing_pix_fmt}, but split planned the video as"
            f" {planned}: split the input again into a new job"
        )
    if facts.processing_pix_fmt != ENCODER_PIX_FMT or facts.converted_on_decode:
        log.info(
            "chunk %d is %s %dx%d: encoded as H.264 %s (%s) with the same range, matrix, primaries and"
            " transfer%s",
            run.chunk.index, facts.pix_fmt, facts.width, facts.height, facts.processing_pix_fmt,
            _profile(facts), " and its HDR metadata" if facts.hdr else "",
        )  # fmt: skip
    stages, plan = _Stages(run, facts), run.plan
    batched = batches(stages.decoded, plan.lane_batch(stages.batch_size))
    lanes = ordered_lanes(batched, stages.detect, stages.detected, plan.lanes)
    stages.clock.timed(
        "render",
        run_stages,
        [stages.decode, *lanes, stages.check, stages.render],
        [stages.decoded, stages.detected, stages.checks],
    )
    outcome = stages.outcome
    if stages.fixup is not None and outcome.verification is not None:
        outcome.verification = stages.fixup.report(outcome.verification)
    log.info(
        "chunk %d: stage CPU s %s (%d frames encoded; %s)",
        run.chunk.index, stages.clock.text(), outcome.frames_done, plan,
    )  # fmt: skip
    if outcome.whole:
        failed = sum(1 for why in outcome.whole.values() if why == "detection failed")
        log.warning(
            "chunk %d: fail-secure anonymized %d frames whole (detection failed: %d, face lost: %d)",
            run.chunk.index, len(outcome.whole), failed, len(outcome.whole) - failed,
        )  # fmt: skip
    return outcome


def _profile(facts: StreamFacts) -> str:
    """Why the chunk is encoded in its format, as the H.264 profile it takes."""
    if facts.processing_pix_fmt.startswith("yuv444"):
        return "High 4:4:4 Predictive: H.264 4:2:0 cannot code an odd side"
    if facts.processing_pix_fmt.endswith("10le"):
        return "High 10: the input's bit depth"
    return "High: 4:2:0, the input's chroma converted"


class _Stages:
    """The pipeline's stages over one run (each runs in its own thread), the channels between them
    and the outcome they fill."""

    def __init__(self, run: ChunkRun, facts: StreamFacts) -> None:
        self.run = run
        self.facts = facts
        self.view = DetectionView.of(facts, run.manifest.video.rotation, run.detectors.faces)
        self.batch_size = max(1, run.options.batch_size)
        self.decoded: Channel[Work] = Channel(2 * self.batch_size)
        # Frames detected but not yet encoded are drained by the render thread alone once detection
        # ends (one core idle on two): keep only what the smoothing horizon and the lanes need.
        self.detected: Channel[Work] = Channel(self.batch_size)
        # Sampled frames as encoded, converted here: a PyAV frame's converter is not for two threads.
        self.per_check = run.plan.check_batch(self.batch_size)
        self.checks: Channel[tuple[int, np.ndarray]] = Channel(2 * self.per_check)
        self.outcome = Outcome()
        self.clock = StageClock()
        self.fixup = self._fixup()
        if self.fixup is not None:  # frames wait for their verdicts: a verdict must not wait for a batch
            self.per_check = 1

    def _fixup(self) -> FixUp | None:
        run, check = self.run, self.run.options.verification
        if run.detectors.verifier is None or run.detectors.tracker is None:
            return None
        times = frame_seconds(run.chunk, run.manifest.video)
        results = CheckResults(lambda: self.checks.aborted)
        return FixUp(
            run.chunk, run.detectors.tracker, self.view.rotation, self.view.stored, check.scale_factor,
            check.every, times, results,
        )  # fmt: skip

    def decode(self) -> None:
        run, clock = self.run, self.clock
        for segment in run.segments:
            own = segment.chunk.index == run.chunk.index
            for number, frame in clock.iterate("decode", numbered(segment, run.files, run.plan.decoder)):
                images = clock.timed("resize", self.view.images, frame)
                self.decoded.put(Work(number, frame if own else None, images))
        self.decoded.close()

    def detect(self, batch: list[Work]) -> list[Work]:
        run, detector = self.run, self.run.detectors.faces
        started = time.thread_time()
        if run.options.fail_secure:
            found = detect_fail_secure(self.view, detector, batch, self.outcome.failed)
        else:
            found = self.view.detect(detector, batch)
        for work, boxes in zip(batch, found, strict=True):
            work.boxes = run.earlier.get(work.number, []) + boxes
            work.detect_images = {}
        self.clock.add("detect", time.thread_time() - started)
        return batch

    def render(self) -> None:
        run, options, params, facts = self.run, self.run.options, self.run.params, self.facts
        outcome, clock, scratch, plan = self.outcome, self.clock, self.run.scratch, self.run.plan
        chosen = choose_encoder(
            options.encoder,
            facts.processing_pix_fmt,
            facts.hdr is not None,
            plan.on_gpu,
            lambda: nvenc_refusal(facts.width, facts.height),
        )
        log.info("chunk %d is encoded with %s (%s)", run.chunk.index, chosen.name, chosen.why)
        outcome.encoder = chosen.name
        with contextlib.ExitStack() as encoders:
            encoder = encoders.enter_context(
                ChunkEncoder(
                    scratch / "processed.mkv", facts, options.crf, options.preset, plan.encoder, chosen.name
                )
            )
            debug = None
            if options.debug:
                debug = encoders.enter_context(
                    ChunkEncoder(
                        scratch / "debug.mkv", facts, options.crf, options.preset, plan.encoder, chosen.name
                    )
                )
            decisions = Confirmations(outcome.raw, params.hysteresis, params.iou_threshold)
            masking = Masking.of(run.chunk, run.manifest, facts, options, params, decisions, outcome.failed)
            for work in _finalised(self.detected, outcome.raw, params):
                boxes = boxes_for_frame(outcome.raw, work.number, params, decisions)
                if boxes:
                    outcome.final[work.number] = boxes
                dropped = decisions.rejected(work.number)
                if dropped:
                    outcome.rejected[work.number] = dropped
                masks, why, lost = masking.masks(work.number)
                if why is not None:
                    outcome.whole[work.number] = why
                sampled = run.detectors.verifier is not None and is_sampled(
                    work.number, options.verification.every
                )
                frame: av.VideoFrame | None = None
                if self.fixup is None or sampled:  # a frame held for the fix-up is anonymized as it leaves
                    frame = clock.timed("anonymize", anonymized, work.frame, boxes, options, facts, masks)
                    if sampled:
                        self.checks.put((work.number, to_bgr(frame)))
                held = Held(work.number, work.frame, frame, boxes, masks, [*dropped, *lost])
                for ready in clock.iterate("fixup", self.fixup.hold(held)) if self.fixup else [held]:
                    self._encode(ready, encoder, debug)
            self.checks.close()
            if self.fixup is not None:
                for ready in clock.iterate("fixup", self.fixup.flush()):
                    self._encode(ready, encoder, debug)

    def _encode(self, held: Held, encoder: ChunkEncoder, debug: ChunkEncoder | None) -> None:
        """Encode a frame as anonymized, or anonymized from the decoded frame with the fix-up's boxes."""
        run, options, clock = self.run, self.run.options, self.clock
        frame = held.anonymized
        if frame is None or held.fixes:
            boxes = [*held.boxes, *held.fixes]
            frame = clock.timed(
                "anonymize", anonymized, held.original, boxes, options, self.facts, held.masks
            )
        clock.timed("encode", encoder.encode, frame)
        if debug is not None:
            debug.encode(debug_frame(frame, [*held.boxes, *held.marked, *held.fixes]))
        self.outcome.frames_done += 1
        if run.progress is not None:
            run.progress(1)

    def check(self) -> None:
        run, checks, per_check = self.run, self.checks, self.per_check
        if run.detectors.verifier is None:
            return
        verifier, heard = run.detectors.verifier, self.fixup.results.put if self.fixup is not None else None
        try:
            self.outcome.verification = self.clock.timed(
                "verify", verify_chunk, checks, run.chunk, run.manifest, run.options, verifier, per_check,
                heard,
            )  # fmt: skip
        finally:
            if self.fixup is not None:
                self.fixup.results.finish()


def _finalised(works: Channel[Work], raw: RawDetections, params: SmoothingParams) -> Iterator[_Own]:
    """The chunk's own frames, each once the detections its smoothing needs are known."""
    pending: collections.deque[_Own] = collections.deque()
    for work in works:
        raw[work.number] = work.boxes
        if work.frame is not None:
            pending.append(_Own(work.number, work.frame))
        while pending and pending[0].number + params.horizon_after <= work.number:
            yield pending.popleft()
    yield from pending
