"""The residual-face check: which regions of an anonymized frame still look like a sharp face.

The verification pass (`faceblur.verify.chunkpass`) runs the job's detectors again on sampled frames of
the output, more sensitive than the run that produced it. Blurred faces still score: a blurred
face of 20 pixels keeps its outline and CenterFace gives it up to 0.56, so a score alone cannot
tell a missed face from a covered one. A detection is a *residual candidate* only when both hold:

* its score reaches `threshold_factor` x the score at which a detection starts a track on its
  own (hysteresis.START_SCORE): what the processing run would call a face without support from
  other frames, lowered by the factor;
* its region is still sharp: the detail of the central half of its box, relative to the detail
  of the whole frame, is at least SHARP_RATIO. Detail is the smaller of two ratios, of the
  variance of the Laplacian and of the mixed derivative d2/dxdy: a blurred face keeps about 0.02
  of either, a solid fill 0; a mosaic keeps strong block edges (Laplacian), but its blocks are
  flat, so its mixed derivative is small. Sharp faces in the test videos measure 0.4 to 3.

Everything here is a pure function of arrays and records; sampling uses the frame numbers of
the whole input, so any chunking of a video checks the same frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from faceblur_contract import defaults as d
from faceblur_contract.records import (
    FixedFrame,
    ResidualBox,
    ResidualFrame,
    Verification,
    VerificationReport,
)

from faceblur.temporal.hysteresis import START_SCORE

Gray = npt.NDArray[np.uint8]

SHARP_RATIO = 0.3  # below: blurred, pixelated or filled (those measure 0 to 0.15 in the tests)
CORE = 0.5  # the central share of a box's width and height whose detail is measured
MIN_CORE_PIXELS = 3  # a core narrower than this (a box of < 6 pixels) is not judged


def is_sampled(frame: int, every: int) -> bool:
    return frame % every == 0


def sampled(frames: Iterable[int], every: int) -> list[int]:
    return [n for n in frames if is_sampled(n, every)]


def sensitive_threshold(threshold: float, factor: float) -> float:
    """The verifier's detector threshold: the processing run's, lowered by the factor."""
    return threshold * factor


def residual_score(factor: float) -> float:
    """The score a sharp region needs to be a residual candidate."""
    return START_SCORE * factor


def finer_scale(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """The verifier's inference size: the processing run's (width, height) times the factor."""
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


@dataclass(frozen=True)
class FrameDetail:
    """A frame's second derivatives, computed once; any box's detail is read from them."""

    laplacian: npt.NDArray[np.float32]
    mixed: npt.NDArray[np.float32]

    @classmethod
    def of(cls, gray: Gray) -> FrameDetail:
        laplacian = np.asarray(cv2.Laplacian(gray, cv2.CV_32F), dtype=np.float32)
        mixed = np.asarray(cv2.Sobel(gray, cv2.CV_32F, 1, 1, ksize=3), dtype=np.float32)
        return cls(laplacian, mixed)

    def relative_sharpness(self, box: tuple[float, float, float, float]) -> float:
        """Detail of the box's core relative to the whole frame's (0 for a core too small to judge)."""
        height, width = self.laplacian.shape
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half_w, half_h = (x2 - x1) * CORE / 2, (y2 - y1) * CORE / 2
        left, right = max(0, int(cx - half_w)), min(width, int(cx + half_w) + 1)
        top, bottom = max(0, int(cy - half_h)), min(height, int(cy + half_h) + 1)
        if right - left < MIN_CORE_PIXELS or bottom - top < MIN_CORE_PIXELS:
            return 0.0
        ratios = []
        for response in (self.laplacian, self.mixed):
            whole = float(response.var())
            if whole <= 0.0:
                return 0.0  # a flat frame: nothing in it is sharp
            ratios.append(float(response[top:bottom, left:right].var()) / whole)
        return min(ratios)


Detection = tuple[float, float, float, float, float, str]  # x1, y1, x2, y2, score, detector


def residual_boxes(gray: Gray, detections: Sequence[Detection], threshold_factor: float) -> list[ResidualBox]:
    """The detections of one (upright, grey) frame that are residual candidates, best first."""
    bar = residual_score(threshold_factor)
    strong = [det for det in detections if det[4] >= bar]
    if not strong:
        return []
    detail = FrameDetail.of(gray)
    found = []
    for x1, y1, x2, y2, score, detector in strong:
        sharpness = detail.relative_sharpness((x1, y1, x2, y2))
        if sharpness >= SHARP_RATIO:
            found.append(
                ResidualBox(
                    x1=round(x1, 1), y1=round(y1, 1), x2=round(x2, 1), y2=round(y2, 1),
                    score=round(score, 3), sharpness=round(sharpness, 3), detector=detector,
                )
            )  # fmt: skip
    return sorted(found, key=lambda b: -b.score)


def residual_frame(frame: int, time_s: float, boxes: Sequence[ResidualBox]) -> ResidualFrame | None:
    if not boxes:
        return None
    best = max(b.score for b in boxes)
    return ResidualFrame(frame=frame, time_s=round(time_s, 3), score=best, boxes=list(boxes))


def worst(frames: Iterable[ResidualFrame], count: int = d.VERIFY_WORST_FRAMES) -> list[ResidualFrame]:
    """The `count` highest-scoring residual frames (earliest first among equals), one box each."""
    ranked = sorted(frames, key=lambda f: (-f.score, f.frame))[:count]
    return [f.model_copy(update={"boxes": f.boxes[:1]}) for f in ranked]


def summarize(
    frames_checked: int, residual: Sequence[ResidualFrame], seconds: float, fixed: Sequence[FixedFrame] = ()
) -> Verification:
    return Verification(
        frames_checked=frames_checked,
        residual_frames=len(residual),
        candidates=sum(len(f.boxes) for f in residual),
        worst=worst(residual),
        seconds=round(seconds, 3),
        fixed_frames=len(fixed),
        unfixed_frames=sum(1 for f in residual if not all(b.fixed for b in f.boxes)),
    )


def exceeds(summary: Verification, max_residual_frames: int | None) -> bool:
    """Whether the output must be refused: more residual frames left unfixed than the job allows."""
    return max_residual_frames is not None and summary.unfixed_frames > max_residual_frames


def merge(
    parts: Sequence[VerificationReport],
    *,
    output: str,
    frames: int,
    max_residual_frames: int | None,
    unverified_chunks: Sequence[int] = (),
) -> VerificationReport:
    """The chunks' reports as one report of the whole output (parts in any order)."""
    if not parts:
        raise ValueError("no chunk was verified")
    first = parts[0]
    residual = sorted((f for part in parts for f in part.residual), key=lambda f: f.frame)
    fixed = sorted((f for part in parts for f in part.fixed), key=lambda f: f.frame)
    checked = sum(part.summary.frames_checked for part in parts)
    seconds = sum(part.summary.seconds for part in parts)
    summary = summarize(checked, residual, seconds, fixed)
    return VerificationReport(
        output=output,
        frames=frames,
        every=first.every,
        threshold_factor=first.threshold_factor,
        scale_factor=first.scale_factor,
        detectors=list(dict.fromkeys(name for part in parts for name in part.detectors)),
        summary=summary,
        max_residual_frames=max_residual_frames,
        passed=not exceeds(summary, max_residual_frames),
        unverified_chunks=sorted(unverified_chunks),
        residual=residual,
        fixed=fixed,
    )


def describe(summary: Verification) -> str:
    """One line for people: 'checked 30 frames: no residual face' or the count and worst frames."""
    if not summary.residual_frames:
        return f"checked {summary.frames_checked} frames: no residual face"
    named = ", ".join(f"frame {f.frame} at {f.time_s:.2f} s ({f.score:.2f})" for f in summary.worst)
    found = (
        f"checked {summary.frames_checked} frames: {summary.residual_frames} with a sharp face-like"
        f" region ({summary.candidates} candidates), worst {named}"
    )
    if not summary.fixed_frames:
        return found
    left = f"{summary.unfixed_frames} left unfixed" if summary.unfixed_frames else "none left unfixed"
    return f"{found}; fixed in {summary.fixed_frames} frames, {left}"


def report_url(output_url: str) -> str:
    """Where the report goes: `<output without its extension>.verify.json`, beside the output."""
    head, _, name = output_url.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{head}/{stem}.verify.json" if head else f"{stem}.verify.json"
