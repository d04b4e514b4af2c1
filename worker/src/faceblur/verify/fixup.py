"""Verify and fix: a face the residual check finds sharp is anonymized before its frames are encoded.

The check (`faceblur.verify.chunkpass`) looks at every n-th frame as it is handed over, in a thread
beside the encoder. With the fix-up on, the render thread holds frames back from the encoder, as
decoded with their boxes (those the check samples also anonymized, as it saw them; the others are
anonymized once, as they leave, with any fixes). A frame leaves once the check has judged every
checked frame up to `Window.reach` frames after it (or the chunk's last checked frame); the render
thread waits for the check only where `Window.hold` frames are held. A candidate the check confirms
is then followed through the held frames: backwards, and forwards into the frames as they come, the
job's detectors made as sensitive as the check look for it in a crop around its last box (twice its
size; at the check's finer scale, or shrunk so the face is FACE_SIDE pixels where it is larger: a
few milliseconds a look). It is looked for in every other frame (STRIDE); found there, the frame
between gets the union of both boxes, which covers its path; not found, the frame between is looked
at on its own, so a face is followed exactly as far as it is found.
Each frame it is found in gets a box of its own (`BoxSource.FIXED`) and is anonymized from the
decoded frame, so no frame is encoded twice and frames, timestamps and colour stay as they are.
Tracking goes on while the face is found, past frames where the main pass's boxes cover it (those
need no box of their own: the main pass may drop it again). A face still found, uncovered, at the
oldest held frame, whose earlier frames are already encoded, is reported unfixed
(`ResidualBox.fixed` false), so a bound on residual frames still fails the job. Before a chunk's
first frame a face is the previous chunk's, which checks its own frames: a face that shows only
in the frames between a chunk's last checked frame and its end is found by neither.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
from faceblur_contract.records import FixedBox, FixedFrame, ResidualBox, VerificationReport

from faceblur.anonymization.anonymize import FrameMasks
from faceblur.detectors import UnionDetector
from faceblur.job.manifest import Box, BoxSource, Chunk
from faceblur.media.codec import to_bgr
from faceblur.media.orientation import rect_to_stored, to_display
from faceblur.process.pipeline import AbortedError
from faceblur.verify.residual import summarize

log = logging.getLogger(__name__)

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2

MATCH_IOU = 0.25  # a box in the next frame overlapping the face's last box this much is the same face
MARGIN = 0.5  # the crop searched reaches this many box sizes beyond each side of the last box
FACE_SIDE = 96  # pixels: a face larger than this is looked for shrunk to it (CenterFace finds it as well)
COVERED = 0.8  # share of a face's box inside a main-pass box for the main pass to have it
STRIDE = 2  # a followed face is looked for in every other frame (half the looks of every frame)
_WAIT_S = 0.1


@dataclass(frozen=True)
class Window:
    """How far back a face found by the check can still be anonymized (`reach`), and how many frames
    the render thread may hold before it waits for the check (the reach plus room for the check to
    run beside it)."""

    reach: int
    hold: int

    @classmethod
    def of(cls, every: int) -> Window:
        reach = min(max(2 * every, 10), 40)  # a face found in a checked frame usually shows since the last
        return cls(reach, reach + min(every, 10) + 1)


@dataclass
class Held:
    """A frame held back from the encoder, with what it takes to anonymize it (again)."""

    number: int
    original: av.VideoFrame  # as decoded
    # as the main pass anonymized it; None: not yet (a frame the check does not sample is anonymized
    # once, as it leaves, with any fixes: no second copy held, no second anonymization)
    anonymized: av.VideoFrame | None
    boxes: list[Box]  # the main pass's boxes (stored pixels)
    masks: FrameMasks
    marked: list[Box]  # boxes drawn in the debug video only (rejected, lost)
    fixes: list[Box] = field(default_factory=list)  # the fix-up's boxes (stored pixels)

    def upright(self, rotation: int) -> np.ndarray:
        """The decoded frame upright in BGR, made when a face is looked for in it and not kept: the
        held frames stay as decoded (1.5 bytes a pixel, not 3 more)."""
        return to_display(to_bgr(self.original), rotation)


class CheckResults:
    """The check's verdicts, frame by frame, from its thread to the render thread."""

    def __init__(self, aborted: Callable[[], bool]) -> None:
        self._ready: list[tuple[int, list[ResidualBox]]] = []
        self._through = -1
        self._finished = False
        self._aborted = aborted
        self._changed = threading.Condition()

    def put(self, number: int, boxes: list[ResidualBox]) -> None:
        with self._changed:
            self._ready.append((number, boxes))
            self._through = number
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def take(
        self, through: int | None = None, everything: bool = False
    ) -> list[tuple[int, list[ResidualBox]]]:
        """The verdicts so far, in frame order, first waiting for frame `through` (or, `everything`,
        the end)."""
        with self._changed:
            while not self._finished and (everything or (through is not None and self._through < through)):
                if self._aborted():
                    raise AbortedError
                self._changed.wait(_WAIT_S)
            ready, self._ready = self._ready, []
            return ready


@dataclass
class _Track:
    box: Rect  # upright pixels, in frame `last`
    last: int
    found_at: int


@dataclass
class _Fix:
    boxes: list[FixedBox] = field(default_factory=list)
    found_at: set[int] = field(default_factory=set)


class FixUp:
    """The render thread's side of verify-and-fix over one chunk (see the module doc)."""

    def __init__(
        self,
        chunk: Chunk,
        tracker: UnionDetector,
        rotation: int,
        stored: tuple[int, int],
        scale_factor: float,
        every: int,
        times: Sequence[float],
        results: CheckResults,
    ) -> None:
        self.chunk, self.tracker, self.rotation, self.stored = chunk, tracker, rotation, stored
        self.scale_factor, self.every, self.times, self.results = scale_factor, every, times, results
        self.window = Window.of(every)
        self.held: collections.deque[Held] = collections.deque()
        self.tracks: list[_Track] = []
        self.fixes: dict[int, _Fix] = {}
        self.unfixed: set[tuple[int, Rect, str]] = set()  # candidates whose face shows in encoded frames
        self.judged = -1  # the last checked frame whose verdict was taken

    def hold(self, frame: Held) -> Iterator[Held]:
        """Take the next frame; give back the frames now final, oldest first."""
        self.held.append(frame)
        self._follow(finish=False)
        self._found(self.results.take())
        while self.held:
            needed = self._needed(self.held[0].number)
            if needed is not None and self.judged < needed:
                if len(self.held) <= self.window.hold:
                    return  # the check has not judged that far yet: no wait while there is room
                self._found(self.results.take(through=needed))
            yield self._release()

    def flush(self) -> Iterator[Held]:
        """The frames still held, once the check has judged them all."""
        self._found(self.results.take(everything=True))
        self._follow(finish=True)
        while self.held:
            yield self._release()

    def _needed(self, number: int) -> int | None:
        """The last checked frame whose verdict frame `number` waits for (None: no checked frame)."""
        last = min(number + self.window.reach, self.chunk.first_frame + self.chunk.frame_count - 1)
        last -= last % self.every
        return last if last >= self.chunk.first_frame else None

    def _release(self) -> Held:
        """The oldest held frame, once each face followed is looked for in it."""
        if any(track.last < self.held[0].number for track in self.tracks):
            self._follow(finish=True)
        return self.held.popleft()

    def report(self, checked: VerificationReport) -> VerificationReport:
        """The check's report with what was fixed: each candidate's `fixed`, and every fixed frame."""
        residual = [
            frame.model_copy(
                update={
                    "boxes": [
                        b.model_copy(
                            update={"fixed": (frame.frame, _rect(b), b.detector) not in self.unfixed}
                        )
                        for b in frame.boxes
                    ]
                }
            )
            for frame in checked.residual
        ]
        fixed = [
            FixedFrame(
                frame=number,
                time_s=round(self.times[number - self.chunk.first_frame], 3),
                found_at=sorted(fix.found_at),
                boxes=fix.boxes,
            )
            for number, fix in sorted(self.fixes.items())
        ]
        summary = summarize(checked.summary.frames_checked, residual, checked.summary.seconds, fixed)
        if self.unfixed:
            log.warning(
                "chunk %d: %d faces found by the check show in frames already encoded: not fixed",
                self.chunk.index, len(self.unfixed),
            )  # fmt: skip
        return checked.model_copy(update={"residual": residual, "fixed": fixed, "summary": summary})

    # ------------------------------------------------------------------------------------ tracking
    def _follow(self, finish: bool) -> None:
        """Carry the faces being followed into the frames that came since; unless `finish`, a
        frame is left for the next call where the one after it has not come yet (see STRIDE)."""
        following = []
        for track in self.tracks:
            later = [h for h in self.held if h.number > track.last]
            box, done, lost = self._walk(later, track.box, track.found_at, keep_last=not finish)
            if not lost:
                last = later[done - 1].number if done else track.last
                following.append(_Track(box, last, track.found_at))
        self.tracks = following

    def _found(self, verdicts: Sequence[tuple[int, list[ResidualBox]]]) -> None:
        for number, boxes in verdicts:
            self.judged = max(self.judged, number)
            if boxes and any(track.last < number for track in self.tracks):
                self._follow(finish=True)  # a face followed into this frame is no new one
            by_number = {h.number: h for h in self.held}
            frame = by_number.get(number)
            for candidate in boxes:
                box, key = _rect(candidate), (number, _rect(candidate), candidate.detector)
                if frame is None:  # cannot happen while the window holds: never silent if it does
                    self.unfixed.add(key)
                    continue
                if self._followed(number, box):
                    continue  # a face already followed here
                self._fix(frame, (box, candidate.score, candidate.detector), number)
                if not self._back(number, box, by_number):
                    self.unfixed.add(key)
                self._forward(number, box, by_number)

    def _back(self, number: int, box: Rect, by_number: dict[int, Held]) -> bool:
        """Follow a face to earlier frames; False where it shows in a frame already encoded."""
        earlier: list[Held] = []
        while (frame := by_number.get(number - 1 - len(earlier))) is not None:
            earlier.append(frame)
        box, done, lost = self._walk(earlier, box, number, keep_last=False)
        if lost:
            return True
        # before the chunk it is the previous chunk's; covered, the main pass's
        covered = done > 0 and self._covered(earlier[done - 1], box)
        return number - 1 - done < self.chunk.first_frame or covered

    def _forward(self, number: int, box: Rect, by_number: dict[int, Held]) -> None:
        later: list[Held] = []
        while (frame := by_number.get(number + 1 + len(later))) is not None:
            later.append(frame)
        box, done, lost = self._walk(later, box, number, keep_last=True)
        if not lost:
            self.tracks.append(_Track(box, number + done, number))

    def _walk(
        self, frames: Sequence[Held], box: Rect, found_at: int, keep_last: bool
    ) -> tuple[Rect, int, bool]:
        """Follow a face from `box` through consecutive `frames` (either way) while it is found, in
        every other frame (STRIDE); `keep_last`: a last frame with none after it is not looked at.
        Gives the face's last box, how many of the frames it was followed through, and whether it
        was lost there (else the frames ran out, or it reached a face followed before)."""
        done = 0
        while done < len(frames):
            if self._followed(frames[done].number, box):
                return box, done, True  # the rest was followed from there
            if done + 1 < len(frames):
                found = self._find(frames[done + 1], box)
                if found is not None:  # the frame between: where it was and where it went
                    self._fix(frames[done], (_union(box, found[0]), found[1], found[2]), found_at)
                    self._fix(frames[done + 1], found, found_at)
                    box, done = found[0], done + STRIDE
                    continue
            elif keep_last:
                break
            found = self._find(frames[done], box)
            if found is None:
                return box, done, True
            self._fix(frames[done], found, found_at)
            box, done = found[0], done + 1
        return box, done, False

    def _followed(self, number: int, box: Rect) -> bool:
        return any(_iou(box, _upright_rect(f)) >= MATCH_IOU for f in self._fixes_shown(number))

    def _find(self, frame: Held, box: Rect) -> tuple[Rect, float, str] | None:
        """The face near `box` in `frame` (upright pixels), by the sensitive detectors on a crop."""
        image = frame.upright(self.rotation)
        height, width = image.shape[:2]
        x1, y1, x2, y2 = box
        reach_x, reach_y = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
        left, top = max(0, int(x1 - reach_x)), max(0, int(y1 - reach_y))
        right, bottom = min(width, int(x2 + reach_x) + 1), min(height, int(y2 + reach_y) + 1)
        if right - left < 2 or bottom - top < 2:
            return None
        crop = image[top:bottom, left:right]
        factor = min(self.scale_factor, FACE_SIDE / max(1.0, min(x2 - x1, y2 - y1)))
        if factor != 1.0:
            size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
            crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        best: tuple[Rect, float, str] | None = None
        best_iou = MATCH_IOU
        for name, boxes in self.tracker.detect_each([np.ascontiguousarray(crop)])[0].items():
            for bx1, by1, bx2, by2, score in boxes.tolist():
                rect = (left + bx1 / factor, top + by1 / factor, left + bx2 / factor, top + by2 / factor)
                overlap = _iou(box, rect)
                if overlap >= best_iou:
                    best, best_iou = (rect, float(score), name), overlap
        return best

    def _covered(self, frame: Held, box: Rect) -> bool:
        if frame.masks.whole:
            return True
        stored = rect_to_stored(box, self.rotation, *self.stored)
        area = max(1e-6, (stored[2] - stored[0]) * (stored[3] - stored[1]))
        return any(_inside(stored, (b.x1, b.y1, b.x2, b.y2)) / area >= COVERED for b in frame.boxes)

    def _fix(self, frame: Held, found: tuple[Rect, float, str], found_at: int) -> None:
        """Anonymize the face in `frame` too, unless the main pass covers it there."""
        if self._covered(frame, found[0]):
            return
        (rect, score, name), stored = found, rect_to_stored(found[0], self.rotation, *self.stored)
        x1, y1, x2, y2 = stored
        frame.fixes.append(
            Box(x1=x1, y1=y1, x2=x2, y2=y2, score=score, detector=name, source=BoxSource.FIXED)
        )
        fix = self.fixes.setdefault(frame.number, _Fix())
        fix.found_at.add(found_at)
        fix.boxes.append(
            FixedBox(
                x1=round(rect[0], 1), y1=round(rect[1], 1), x2=round(rect[2], 1), y2=round(rect[3], 1),
                score=round(score, 3), detector=name,
            )
        )  # fmt: skip

    def _fixes_shown(self, number: int) -> list[FixedBox]:
        fix = self.fixes.get(number)
        return fix.boxes if fix is not None else []


def _rect(box: ResidualBox) -> Rect:
    return box.x1, box.y1, box.x2, box.y2


def _upright_rect(box: FixedBox) -> Rect:
    return box.x1, box.y1, box.x2, box.y2


def _union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _inside(a: Rect, b: Rect) -> float:
    """The area of `a` inside `b`."""
    width, height = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _iou(a: Rect, b: Rect) -> float:
    inter = _inside(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
