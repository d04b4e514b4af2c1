"""Process one chunk of a job: detect, smooth, anonymize, encode, publish.

A chunk worker needs no coordination with its neighbours: it also decodes and detects
the few frames of the neighbouring chunks that smoothing looks at (the halo), so every
chunk comes out exactly as a single run over the whole video would make it.

Work is pipelined in threads (decode -> detect in batches -> smooth, anonymize and
encode). Outputs go to a temporary folder and are published in a fixed order:
detections, debug chunk, processed chunk, then the chunk result, whose presence means
"this index is done". A crash at any point leaves no result, so the index is redone.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
from faceblur_contract.records import VerificationReport

from faceblur import verify
from faceblur.anonymize import (
    BGR_BLACK,
    FrameMasks,
    MaskStyle,
    anonymize,
    anonymize_i420,
    anonymize_i420_masked,
    anonymize_masked,
)
from faceblur.codec import (
    ChunkEncoder,
    StreamFacts,
    decode_frames,
    decode_tail,
    frame_from_bgr,
    frame_from_i420,
    frame_with_drawing,
    i420_planes,
    stream_facts,
    to_bgr,
)
from faceblur.detectors import Boxes, UnionDetector, shared_detector
from faceblur.drawing import draw_boxes
from faceblur.errors import InvalidInputError, MediaFileError
from faceblur.failsecure import FailSecure, LostFaces, horizon_before
from faceblur.hysteresis import Confirmations
from faceblur.jobmanifest import chunks_at, load_manifest, object_location
from faceblur.layout import JobLayout
from faceblur.manifest import Box, BoxSource, Chunk, ChunkDetections, ChunkResult, Manifest, frame_seconds
from faceblur.options import ProcessOptions
from faceblur.orientation import boxes_to_stored, normalize_rotation, to_display
from faceblur.pipeline import Channel, batches, ordered_lanes, run_stages
from faceblur.providers import chosen_providers, runs_on_gpu
from faceblur.regions import FrameRegions, RegionMap, region_map
from faceblur.smoothing import SmoothingParams, boxes_for_frame
from faceblur.stageclock import StageClock
from faceblur.storage import ObjectStore
from faceblur.threadplan import ThreadPlan, available_cores, plan_threads
from faceblur.verifypass import sensitive_detector, verify_chunk

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
RawDetections = dict[int, list[Box]]  # frame number -> detected boxes


@dataclass(frozen=True)
class Segment:
    """Frames to decode from one chunk file: all of it, or only its first or last `count` frames."""

    chunk: Chunk
    part: str  # "all", "head" or "tail"
    count: int

    @property
    def frames(self) -> range:
        if self.part == "tail":
            return range(self.chunk.last_frame - self.count + 1, self.chunk.last_frame + 1)
        return range(self.chunk.first_frame, self.chunk.first_frame + self.count)


def plan_segments(chunks: Sequence[Chunk], index: int, before: int, after: int) -> list[Segment]:
    """What to decode for chunk `index`: the halo of `before`/`after` frames around it, then itself."""
    ordered = sorted(chunks, key=lambda c: c.first_frame)
    position = next(i for i, c in enumerate(ordered) if c.index == index)
    own = ordered[position]
    segments: list[Segment] = []
    need = before
    for chunk in reversed(ordered[:position]):
        if need <= 0:
            break
        take = min(need, chunk.frame_count)
        segments.insert(0, Segment(chunk, "all" if take == chunk.frame_count else "tail", take))
        need -= take
    segments.append(Segment(own, "all", own.frame_count))
    need = after
    for chunk in ordered[position + 1 :]:
        if need <= 0:
            break
        take = min(need, chunk.frame_count)
        segments.append(Segment(chunk, "all" if take == chunk.frame_count else "head", take))
        need -= take
    return segments


@dataclass
class _Work:
    """One decoded frame on its way through the pipeline."""

    number: int  # frame number in the whole input
    frame: av.VideoFrame | None  # kept only for the chunk's own frames
    detect_images: dict[tuple[int, int] | None, np.ndarray]  # upright BGR per size; dropped once used
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class _Own:
    number: int
    frame: av.VideoFrame


@dataclass
class _Outcome:
    final: dict[int, list[Box]] = field(default_factory=dict)
    rejected: dict[int, list[Box]] = field(default_factory=dict)  # own frames' unconfirmed detections
    whole: dict[int, str] = field(default_factory=dict)  # own frames fail-secure anonymized whole: why
    failed: set[int] = field(default_factory=set)  # frames whose detection raised (fail-secure only)
    raw: RawDetections = field(default_factory=dict)
    frames_done: int = 0
    verification: VerificationReport | None = None  # None: verification is off


@dataclass(frozen=True)
class _Detectors:
    faces: UnionDetector  # the job's detectors
    verifier: UnionDetector | None  # their sensitive copies checking the output (None: no check)


def process_chunk(
    store: ObjectStore,
    layout: JobLayout,
    index: int,
    options: ProcessOptions,
    progress: Progress | None = None,
) -> ChunkResult:
    started = time.monotonic()
    manifest = load_manifest(store, layout)
    (chunk,) = chunks_at(manifest, [index])
    result_key = layout.chunk_result(index)
    if not (options.force or options.merge) and store.exists(result_key):
        log.info("chunk %d is already done: nothing to do", index)
        return ChunkResult.model_validate_json(store.get_bytes(result_key))
    previous = _previous_detections(store, layout, index) if options.merge else None
    plan = thread_plan(options)
    detector = shared_detector(
        tuple(options.detectors), options.execution_provider, plan.intra_op, plan.networks
    )
    verifier = sensitive_detector(manifest, options, plan.intra_op) if options.verify.enabled else None
    params = SmoothingParams.for_window(options.look_back, options.look_ahead)
    before = params.horizon_before
    if options.fail_secure:
        before = horizon_before(params, options.fail_secure_hold)  # lost faces look further back
    segments = plan_segments(manifest.chunks, index, before, params.horizon_after)
    names = _merged_names(previous, detector.names)

    with tempfile.TemporaryDirectory(prefix=f"faceblur-{index:06d}-") as tmp_name:
        tmp = Path(tmp_name)
        files = _download_chunks(store, segments, tmp)
        try:
            outcome = _run(
                segments, files, chunk, manifest, _Detectors(detector, verifier), previous, params, options,
                plan, tmp, progress,
            )  # fmt: skip
        except MediaFileError as exc:  # name the job's chunk object, not its scratch copy
            raise exc.naming(_chunk_copies(store, segments, files)) from None
        if outcome.whole:
            failed = sum(1 for why in outcome.whole.values() if why == "detection failed")
            log.warning(
                "chunk %d: fail-secure anonymized %d frames whole (detection failed: %d, face lost: %d)",
                index, len(outcome.whole), failed, len(outcome.whole) - failed,
            )  # fmt: skip
        verification = outcome.verification
        detections, result = _documents(chunk, names, outcome, time.monotonic() - started)
        if verification is not None:
            result = result.model_copy(update={"verification": verification.summary})
        if options.force or options.merge:
            store.delete(result_key)  # the index is not done while its objects are replaced
        store.put_bytes(layout.detections(index), detections.to_json(), "application/json")
        if options.debug:
            store.upload(tmp / "debug.mkv", layout.debug_chunk(index), "video/x-matroska")
        if verification is not None:
            store.put_bytes(layout.chunk_verification(index), verification.to_json(), "application/json")
        store.upload(tmp / "processed.mkv", layout.processed(index), "video/x-matroska")
        store.put_bytes(result_key, result.to_json(), "application/json")
    log.info(
        "chunk %d: %d frames, %d faces covered (%d detected) in %.1fs",
        index, result.frames, result.faces, result.detected_faces, result.seconds,
    )  # fmt: skip
    return result


def thread_plan(options: ProcessOptions) -> ThreadPlan:
    """The worker's threads from its budget (--threads, or the cores it may use)."""
    on_gpu = runs_on_gpu(chosen_providers(options.execution_provider))
    cv2.setNumThreads(1)  # OpenCV's own pool would compete with the plan's threads
    return plan_threads(options.threads or available_cores(), on_gpu)


def _documents(
    chunk: Chunk, detectors: list[str], outcome: _Outcome, seconds: float
) -> tuple[ChunkDetections, ChunkResult]:
    own = range(chunk.first_frame, chunk.last_frame + 1)
    detections = ChunkDetections(
        index=chunk.index,
        first_frame=chunk.first_frame,
        last_frame=chunk.last_frame,
        detectors=detectors,
        frames=outcome.final,
        neighbour_frames={n: boxes for n, boxes in outcome.raw.items() if boxes and n not in own},
        rejected=outcome.rejected,
        whole_frames=outcome.whole,
    )
    result = ChunkResult(
        index=chunk.index,
        frames=chunk.frame_count,
        faces=sum(len(boxes) for boxes in outcome.final.values()),
        detected_faces=sum(len(outcome.raw.get(n, ())) for n in own),
        frames_with_faces=len(outcome.final),
        detectors=detectors,
        seconds=round(seconds, 3),
        whole_frames=len(outcome.whole),
    )
    return detections, result


def _previous_detections(store: ObjectStore, layout: JobLayout, index: int) -> ChunkDetections | None:
    key = layout.detections(index)
    if not store.exists(key):
        log.warning("merge: chunk %d has no detections yet: processing it from scratch", index)
        return None
    return ChunkDetections.model_validate_json(store.get_bytes(key))


def _merged_names(previous: ChunkDetections | None, current: list[str]) -> list[str]:
    earlier = previous.detectors if previous else []
    return [*earlier, *(name for name in current if name not in earlier)]


def _chunk_copies(
    store: ObjectStore, segments: Sequence[Segment], files: Mapping[int, Path]
) -> dict[Path, tuple[str, str]]:
    """What each downloaded chunk file is a copy of, and what to do when it cannot be read."""
    return {
        files[s.chunk.index]: (
            f"chunk {s.chunk.index} ({object_location(store, s.chunk.key)})",
            "the job's chunk is damaged: split the input again into a new job"
            " (a new --job folder or prefix, or delete the FaceBlurJob and create it again)",
        )
        for s in segments
    }


def _download_chunks(store: ObjectStore, segments: Sequence[Segment], tmp: Path) -> dict[int, Path]:
    files = {}
    for segment in segments:
        path = tmp / f"chunk-{segment.chunk.index:06d}{Path(segment.chunk.key).suffix or '.mkv'}"
        store.download(segment.chunk.key, path)
        files[segment.chunk.index] = path
    return files


def _run(
    segments: Sequence[Segment],
    files: Mapping[int, Path],
    chunk: Chunk,
    manifest: Manifest,
    detectors: _Detectors,
    previous: ChunkDetections | None,
    params: SmoothingParams,
    options: ProcessOptions,
    plan: ThreadPlan,
    tmp: Path,
    progress: Progress | None,
) -> _Outcome:
    facts = stream_facts(files[chunk.index])
    if facts.converted_on_decode:
        log.warning(
            "chunk %d is %s: encoded as 8-bit yuv420p with the same range, matrix, primaries and transfer",
            chunk.index, facts.pix_fmt,
        )  # fmt: skip
    detector = detectors.faces
    view = _DetectionView.of(facts, manifest.video.rotation, detector)
    batch_size = max(1, options.batch_size)
    decoded: Channel[_Work] = Channel(2 * batch_size)
    # Frames detected but not yet encoded are drained by the render thread alone once detection
    # ends (one core idle on two): keep only what the smoothing horizon and the lanes need.
    detected: Channel[_Work] = Channel(batch_size)
    # Sampled frames as encoded, converted here: a PyAV frame's converter is not for two threads.
    per_check = plan.check_batch(batch_size)
    checks: Channel[tuple[int, np.ndarray]] = Channel(2 * per_check)
    outcome = _Outcome()
    replaced = set(detector.names)
    earlier = _earlier_raw(previous, replaced)
    clock = StageClock()

    def decode() -> None:
        for segment in segments:
            own = segment.chunk.index == chunk.index
            for number, frame in clock.iterate("decode", _numbered(segment, files, plan.decoder)):
                images = clock.timed("resize", view.images, frame)
                decoded.put(_Work(number, frame if own else None, images))
        decoded.close()

    def detect(batch: list[_Work]) -> list[_Work]:
        started = time.thread_time()
        if options.fail_secure:
            found = _detected(view, detector, batch, outcome.failed)
        else:
            found = view.detect(detector, batch)
        for work, boxes in zip(batch, found, strict=True):
            work.boxes = earlier.get(work.number, []) + boxes
            work.detect_images = {}
        clock.add("detect", time.thread_time() - started)
        return batch

    def render() -> None:
        with contextlib.ExitStack() as encoders:
            encoder = encoders.enter_context(
                ChunkEncoder(tmp / "processed.mkv", facts, options.crf, options.preset, plan.encoder)
            )
            debug = None
            if options.debug:
                debug = encoders.enter_context(
                    ChunkEncoder(tmp / "debug.mkv", facts, options.crf, options.preset, plan.encoder)
                )
            decisions = Confirmations(outcome.raw, params.hysteresis, params.iou_threshold)
            masking = _Masking.of(chunk, manifest, facts, options, params, decisions, outcome.failed)
            for work in _finalised(detected, outcome.raw, params):
                boxes = boxes_for_frame(outcome.raw, work.number, params, decisions)
                if boxes:
                    outcome.final[work.number] = boxes
                dropped = decisions.rejected(work.number)
                if dropped:
                    outcome.rejected[work.number] = dropped
                masks, why, lost = masking.masks(work.number)
                if why is not None:
                    outcome.whole[work.number] = why
                frame = clock.timed("anonymize", _anonymized, work.frame, boxes, options, facts, masks)
                if detectors.verifier is not None and verify.is_sampled(work.number, options.verify.every):
                    checks.put((work.number, to_bgr(frame)))
                clock.timed("encode", encoder.encode, frame)
                if debug is not None:
                    debug.encode(_debug_frame(frame, [*boxes, *dropped, *lost]))
                outcome.frames_done += 1
                if progress is not None:
                    progress(1)
        checks.close()

    def check() -> None:
        if detectors.verifier is not None:
            verifier = detectors.verifier
            outcome.verification = clock.timed(
                "verify", verify_chunk, checks, chunk, manifest, options, verifier, per_check
            )

    lanes = ordered_lanes(batches(decoded, plan.lane_batch(batch_size)), detect, detected, plan.lanes)
    clock.timed("render", run_stages, [decode, *lanes, check, render], [decoded, detected, checks])
    log.info(
        "chunk %d: stage CPU s %s (%d frames encoded; %s)",
        chunk.index, clock.text(), outcome.frames_done, plan,
    )  # fmt: skip
    return outcome


def _numbered(
    segment: Segment, files: Mapping[int, Path], threads: int = 0
) -> Iterator[tuple[int, av.VideoFrame]]:
    """The segment's frames with their frame numbers; a chunk that decodes to another count is refused."""
    path = files[segment.chunk.index]
    limit = segment.count if segment.part == "head" else None
    if segment.part == "tail":
        frames: Iterable[av.VideoFrame] = decode_tail(path, segment.count, segment.chunk.frame_count, threads)
    else:
        frames = decode_frames(path, limit=limit, threads=threads)
    count = 0
    for number, frame in zip(segment.frames, frames, strict=False):
        count += 1
        yield number, frame
    if segment.part == "all":
        count += sum(1 for _ in frames)  # anything left over is also a mismatch
    if count != segment.count:
        raise InvalidInputError(
            f"chunk {segment.chunk.index} ({path.name}) does not decode to the manifest's "
            f"{segment.chunk.frame_count} frames"
        )


def _finalised(works: Channel[_Work], raw: RawDetections, params: SmoothingParams) -> Iterator[_Own]:
    """The chunk's own frames, each once the detections its smoothing needs are known."""
    pending: collections.deque[_Own] = collections.deque()
    for work in works:
        raw[work.number] = work.boxes
        if work.frame is not None:
            pending.append(_Own(work.number, work.frame))
        while pending and pending[0].number + params.horizon_after <= work.number:
            yield pending.popleft()
    yield from pending


def _earlier_raw(previous: ChunkDetections | None, replaced: set[str]) -> RawDetections:
    """Detections of an earlier pass to merge with, minus those of detectors run again now."""
    if previous is None:
        return {}
    merged: RawDetections = {}
    stored = [*previous.frames.items(), *previous.neighbour_frames.items(), *previous.rejected.items()]
    for number, boxes in stored:
        kept = [
            b.model_copy(update={"source": BoxSource.DETECTED})
            for b in boxes
            if b.source in (BoxSource.DETECTED, BoxSource.REJECTED) and b.detector not in replaced
        ]
        if kept:
            merged.setdefault(number, []).extend(kept)
    return merged


@dataclass(frozen=True)
class _DetectionView:
    """How frames are shown to the detectors, and how their boxes map back to stored pixels.

    Detectors see frames upright (display orientation), each at the size it works at:
    frames are shrunk straight from the decoder (one cheap conversion, small buffers).
    """

    rotation: int
    stored: tuple[int, int]  # width, height as decoded
    upright: tuple[int, int]  # width, height as displayed
    sizes: tuple[tuple[int, int] | None, ...]  # distinct sizes the detectors want (None: full)

    @classmethod
    def of(cls, facts: StreamFacts, rotation: int, detector: UnionDetector) -> _DetectionView:
        turned = normalize_rotation(rotation)
        upright = (facts.height, facts.width) if turned in (90, 270) else (facts.width, facts.height)
        sizes = tuple(dict.fromkeys(detector.stretch_sizes(*upright)))
        return cls(turned, (facts.width, facts.height), upright, sizes)

    def images(self, frame: av.VideoFrame) -> dict[tuple[int, int] | None, np.ndarray]:
        images = {}
        for size in self.sizes:
            width, height = size or self.upright
            stored_size = (height, width) if self.rotation in (90, 270) else (width, height)
            images[size] = to_display(to_bgr(frame, stored_size), self.rotation)
        return images

    def detect(self, detector: UnionDetector, batch: Sequence[_Work]) -> list[list[Box]]:
        found = detector.detect_resized([work.detect_images for work in batch], *self.upright)
        return [self._boxes(per_detector) for per_detector in found]

    def _boxes(self, per_detector: Mapping[str, Boxes]) -> list[Box]:
        found = []
        for name, boxes in per_detector.items():
            stored = boxes_to_stored(boxes, self.rotation, *self.stored)
            for x1, y1, x2, y2, score in stored.tolist():
                found.append(Box(x1=x1, y1=y1, x2=x2, y2=y2, score=score, detector=name))
        return found


@dataclass(frozen=True)
class _Masking:
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
    ) -> _Masking:
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


def _detected(
    view: _DetectionView, detector: UnionDetector, batch: Sequence[_Work], failed: set[int]
) -> list[list[Box]]:
    """Fail-secure detection: a batch that raises is retried frame by frame, and the frames that
    still raise are marked failed (anonymized whole) instead of failing the chunk."""
    try:
        return view.detect(detector, batch)
    except Exception as exc:  # any failure of the model: it must not leave a face showing
        first, last = batch[0].number, batch[-1].number
        log.warning("detection failed on frames %d-%d (%s): retrying one by one", first, last, exc)
    found: list[list[Box]] = []
    for work in batch:
        try:
            found.extend(view.detect(detector, [work]))
        except Exception as exc:
            log.warning("frame %d: detection failed (%s): anonymized whole (fail-secure)", work.number, exc)
            failed.add(work.number)
            found.append([])
    return found


def _anonymized(
    frame: av.VideoFrame,
    boxes: Sequence[Box],
    options: ProcessOptions,
    facts: StreamFacts,
    masks: FrameMasks | None = None,
) -> av.VideoFrame:
    """The frame with its faces anonymized; with `masks`, also the fixed regions and fail-secure."""
    masked = masks is not None and (masks.whole or masks.blur or (masks.keep and boxes))
    if not boxes and not masked:
        return frame
    style = MaskStyle(options.replacewith, options.mask_shape, options.mask_scale)
    coords = [(b.x1, b.y1, b.x2, b.y2) for b in boxes]
    if facts.width % 2 or facts.height % 2:
        image = to_bgr(frame)
        if masked and masks is not None:
            anonymize_masked(image, coords, style, masks, BGR_BLACK)
        else:
            anonymize(image, coords, style)
        if options.draw_scores:
            draw_boxes(image, boxes)
        return frame_from_bgr(image, frame)
    planes = i420_planes(frame)
    if masked and masks is not None:
        anonymize_i420_masked(planes, facts.width, facts.height, coords, style, masks, facts.full_range)
    else:
        anonymize_i420(planes, facts.width, facts.height, coords, style, facts.full_range)
    anonymized = frame_from_i420(planes, frame)
    return _debug_frame(anonymized, boxes) if options.draw_scores else anonymized


def _debug_frame(frame: av.VideoFrame, boxes: Sequence[Box]) -> av.VideoFrame:
    """The frame with its boxes drawn; a frame without boxes goes to the encoder untouched."""
    if not boxes:
        return frame
    return frame_with_drawing(frame, lambda image: draw_boxes(image, boxes))
