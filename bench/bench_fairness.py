#!/usr/bin/env python3
"""Missed faces per skin tone, face size and head turn, through `faceblur blur` with its defaults.

The faces are the real ones of the photos that ship in packages here: the six of insightface's
`t1.jpg` and scikit-image's astronaut (their boxes are found by CenterFace on the full-resolution
photo, as the test videos do: faceblur_testenv.videos). Each is grouped by its skin tone, measured as
the Individual Typology Angle (ITA, Chevalier's bands) of the median CIELAB colour of its cheeks and
nose. None of these photos shows a tan, brown or dark skin (ITA below 28 degrees): the table has
only the bands the photos hold, and says so; no face is darkened to stand in for a skin tone.

Each face is cut from its photo with a soft elliptical edge (hair and chin included), shrunk so that
its box is SIZE pixels high, turned, and moved over a real face-free photo (scikit-image's coffee,
rocket, brick), one clip per size with every face and turn in it. Turns are 2D warps of a frontal
photo, which is all a single photo allows honestly: an in-plane roll is exact; yaw and pitch tilt
the face as a flat card (foreshortening and perspective), so they show no profile, no hidden eye or
occluding nose as a real head turn does. A real turned head is harder than these.

A face is *missed* in a frame when less than COVERED of its region (the ellipse of its box, warped
as the face) lies inside the anonymization mask: the union of the mask ellipses of the boxes the
job's detections document lists for that frame (what the pipeline blurred). "main pass" counts the
boxes detection, smoothing and tracking made; "after fix" adds the boxes the residual check's
fix-up anonymized (any other box source in the document, and the boxes each chunk's verification
report lists as fixed; the fix-up is on by default, `--verify-fix`). Misses of the main pass
are split by cause: a box over the face was detected but rejected as weak and unsupported
(hysteresis), or no box scored the detector's threshold there.

`--scale-factor F` runs the detector at F times the frame's size (`--scale 1280x720` for these
640x360 clips at F=2) instead of its default, the frame's own size: what a finer inference scale
gains on small faces.

Usage: python bench/bench_fairness.py [--frames 40] [--quick] [--scale-factor F] [--workdir DIR]
--quick (12 frames, sizes 12 and 24) checks that it runs. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from faceblur.anonymization.anonymize import ellipse_coverage
from faceblur.job.blur import blur
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Box, BoxSource, ChunkDetections, Manifest
from faceblur.storage import LocalStore
from faceblur_contract.options import DetectorSpec, ProcessOptions
from faceblur_contract.records import VerificationReport
from faceblur_testenv.facefree import FaceFreeScene, face_free_still
from faceblur_testenv.videos import Scene, still, still_faces

Image = npt.NDArray[np.uint8]
WIDTH, HEIGHT, FPS = 640, 360, 25
SIZES = (12, 16, 24, 32)  # face box height in pixels
COVERED = 0.9  # share of a face's region the mask must cover in a frame
CUT = 1.1  # the cut-out reaches this many box sizes out from the box centre (hair, chin, neck)
MAIN_PASS = frozenset({BoxSource.DETECTED, BoxSource.CARRIED, BoxSource.INTERPOLATED})
# Chevalier's ITA bands (degrees), lightest first
TONES = (("very light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0), ("brown", -30.0))
TURNS = ("frontal", "roll 30", "yaw 45 (card)", "pitch 30 (card)")
BACKGROUNDS = (FaceFreeScene.COFFEE, FaceFreeScene.ROCKET, FaceFreeScene.COFFEE, FaceFreeScene.ROCKET)


@dataclass(frozen=True)
class Source:
    name: str
    image: Image
    box: tuple[float, float, float, float]
    ita: float

    @property
    def tone(self) -> str:
        return next((name for name, low in TONES if self.ita > low), "dark")


def ita(image: Image, box: tuple[float, float, float, float]) -> float:
    """The Individual Typology Angle of the face's cheeks and nose (median L* and b*)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    core = image[int(y1 + 0.35 * h) : int(y1 + 0.75 * h), int(x1 + 0.25 * w) : int(x2 - 0.25 * w)]
    lab = cv2.cvtColor(core, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float64)
    lightness, yellow = float(np.median(lab[:, 0])) * 100 / 255, float(np.median(lab[:, 2])) - 128
    return math.degrees(math.atan2(lightness - 50, yellow))


def sources() -> list[Source]:
    found = []
    for scene in (Scene.GROUP, Scene.ASTRONAUT):
        image = still(scene)
        for n, face in enumerate(still_faces(scene)):
            box = (face.x1, face.y1, face.x2, face.y2)
            found.append(Source(f"{scene.value}-{n}", image, box, ita(image, box)))
    return found


def turn_matrix(turn: str, size: float) -> npt.NDArray[np.float64]:
    """A 3x3 map about the origin: roll rotates; yaw and pitch turn a flat card seen from 4 sizes away."""
    if turn == "frontal":
        return np.eye(3)
    if turn.startswith("roll"):
        a = math.radians(30)
        return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    a, f = math.radians(45 if turn.startswith("yaw") else 30), 4.0 * size
    rotation = (
        np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        if turn.startswith("yaw")
        else np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    )
    # the card's point (x, y, 0) turns about its centre, which stays at depth f, and is projected back
    card = np.array(
        [
            [rotation[0, 0], rotation[0, 1], 0],
            [rotation[1, 0], rotation[1, 1], 0],
            [rotation[2, 0], rotation[2, 1], f],
        ]
    )
    matrix: npt.NDArray[np.float64] = np.diag([f, 1.0 * f, 1.0]) @ card
    return matrix / matrix[2, 2]


@dataclass(frozen=True)
class Placement:
    source: Source
    turn: str
    size: int
    centre: tuple[float, float]  # where the face centre starts, frame pixels
    phase: float

    def centre_at(self, frame: int) -> tuple[float, float]:
        """A slow walk: about 2 px a frame along an ellipse of 40 x 12 px."""
        t = self.phase + frame * 0.1
        return self.centre[0] + 20 * math.sin(t), self.centre[1] + 6 * math.cos(t)


def homography(place: Placement, frame: int) -> npt.NDArray[np.float64]:
    """Source photo pixels -> frame pixels for this face in this frame."""
    x1, y1, x2, y2 = place.source.box
    s = place.size / (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    to_origin = np.array([[s, 0, -s * cx], [0, s, -s * cy], [0, 0, 1]])
    px, py = place.centre_at(frame)
    to_place = np.array([[1, 0, px], [0, 1, py], [0, 0, 1]])
    return to_place @ turn_matrix(place.turn, place.size) @ to_origin


def face_region(place: Placement, frame: int) -> npt.NDArray[np.int32]:
    """The polygon of the face's box ellipse, warped as the face is, in frame pixels."""
    x1, y1, x2, y2 = place.source.box
    t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    points = np.stack(
        [(x1 + x2) / 2 + (x2 - x1) / 2 * np.cos(t), (y1 + y2) / 2 + (y2 - y1) / 2 * np.sin(t)], 1
    )
    warped = cv2.perspectiveTransform(points[None].astype(np.float64), homography(place, frame))[0]
    return np.round(warped).astype(np.int32)


def cut_alpha(source: Source) -> npt.NDArray[np.float32]:
    """Alpha over the source photo: 1 inside the cut-out ellipse around the face, feathered at its edge."""
    x1, y1, x2, y2 = source.box
    h, w = source.image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    rx, ry = CUT * (x2 - x1), CUT * (y2 - y1) * 1.05
    r = np.sqrt(((xs - (x1 + x2) / 2) / rx) ** 2 + ((ys - (y1 + y2) / 2) / ry) ** 2)
    alpha: npt.NDArray[np.float32] = np.clip((1.0 - r) / 0.25, 0.0, 1.0).astype(np.float32)
    return alpha


def render(places: list[Placement], background: Image, frames: int) -> list[Image]:
    """Every frame: the background panned slowly, each face warped in with its soft edge."""
    bg_scale = max(WIDTH * 1.2 / background.shape[1], HEIGHT * 1.2 / background.shape[0])
    bg = cv2.resize(background, None, fx=bg_scale, fy=bg_scale, interpolation=cv2.INTER_AREA)
    # each face's photo shrunk once with an area filter, so the per-frame warp does not alias
    shrunk: dict[tuple[str, int], tuple[Image, npt.NDArray[np.float32], float]] = {}
    for place in places:
        key = (place.source.name, place.size)
        if key not in shrunk:
            s = place.size / (place.source.box[3] - place.source.box[1])
            image = cv2.resize(place.source.image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(cut_alpha(place.source), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            shrunk[key] = (np.asarray(image, dtype=np.uint8), np.asarray(alpha, dtype=np.float32), s)
    out = []
    for n in range(frames):
        dx = (bg.shape[1] - WIDTH) * n / max(frames - 1, 1)
        frame = bg[:HEIGHT, int(dx) : int(dx) + WIDTH].astype(np.float32)
        for place in places:
            image, alpha, s = shrunk[(place.source.name, place.size)]
            unshrink = np.array([[1 / s, 0, 0], [0, 1 / s, 0], [0, 0, 1]])
            matrix = homography(place, n) @ unshrink
            face = cv2.warpPerspective(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
            a = cv2.warpPerspective(alpha, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)[..., None]
            frame = frame * (1 - a) + face.astype(np.float32) * a
        out.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return out


def write_video(path: Path, frames: Iterable[Image]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": "18", "preset": "veryfast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def layout_places(found: list[Source], size: int) -> list[Placement]:
    """One face per source and turn, in a grid of sources x turns, each walking on its own phase."""
    cols, rows = len(found), len(TURNS)
    places = []
    for r, turn in enumerate(TURNS):
        for c, source in enumerate(found):
            centre = ((c + 0.5) * WIDTH / cols, (r + 0.5) * HEIGHT / rows)
            places.append(Placement(source, turn, size, centre, phase=1.3 * c + 0.7 * r))
    return places


@dataclass
class Tally:
    frames: int = 0
    missed_main: int = 0
    missed_after: int = 0
    rejected: int = 0  # main-pass misses with a rejected box over the face
    unseen: int = 0  # main-pass misses with no box over the face


def detections_of(job: Path) -> tuple[dict[int, list[Box]], dict[int, list[Box]], dict[int, list[Box]]]:
    """Per frame: the boxes the main pass anonymized, those it rejected, and those the fix-up anonymized
    (each chunk's verification report lists them)."""
    store, layout = LocalStore(job), JobLayout("")
    manifest = Manifest.model_validate_json(store.get_bytes(layout.manifest))
    kept: dict[int, list[Box]] = {}
    rejected: dict[int, list[Box]] = {}
    fixed: dict[int, list[Box]] = defaultdict(list)
    for chunk in manifest.chunks:
        document = ChunkDetections.model_validate_json(store.get_bytes(layout.detections(chunk.index)))
        kept.update(document.frames)
        rejected.update(document.rejected)
        if store.exists(layout.chunk_verification(chunk.index)):  # absent where the check is off
            report = VerificationReport.model_validate_json(
                store.get_bytes(layout.chunk_verification(chunk.index))
            )
            for frame in report.fixed:
                fixed[frame.frame] += [Box(**box.model_dump()) for box in frame.boxes]
    return kept, rejected, fixed


def mask_of(boxes: Iterable[Box], mask_scale: float) -> npt.NDArray[np.bool_]:
    return ellipse_coverage([(box.x1, box.y1, box.x2, box.y2) for box in boxes], mask_scale, WIDTH, HEIGHT)


def share_covered(region: npt.NDArray[np.int32], mask: npt.NDArray[np.bool_]) -> float:
    inside = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    cv2.fillPoly(inside, [region], 1)
    pixels = inside.astype(bool)
    return float(mask[pixels].mean()) if pixels.any() else 1.0


def overlaps(region: npt.NDArray[np.int32], boxes: Iterable[Box]) -> bool:
    """A box whose centre lies inside the face's region's bounding box."""
    x, y, w, h = cv2.boundingRect(region)
    return any(x <= (b.x1 + b.x2) / 2 <= x + w and y <= (b.y1 + b.y2) / 2 <= y + h for b in boxes)


def measure(
    places: list[Placement],
    job: Path,
    frames: int,
    mask_scale: float,
    tallies: dict[tuple[str, int, str], Tally],
) -> None:
    kept, rejected, fixed = detections_of(job)
    for n in range(frames):
        boxes = kept.get(n, [])
        main = mask_of((b for b in boxes if b.source in MAIN_PASS), mask_scale)
        extra = [b for b in boxes if b.source not in MAIN_PASS] + fixed.get(n, [])
        after = main | mask_of(extra, mask_scale)
        for place in places:
            region = face_region(place, n)
            tally = tallies[(place.source.tone, place.size, place.turn)]
            tally.frames += 1
            if share_covered(region, main) < COVERED:
                tally.missed_main += 1
                if overlaps(region, rejected.get(n, [])):
                    tally.rejected += 1
                else:
                    tally.unseen += 1
            if share_covered(region, after) < COVERED:
                tally.missed_after += 1


def print_table(tallies: dict[tuple[str, int, str], Tally], counts: dict[str, int]) -> None:
    print(
        f"{'skin tone (ITA band)':<22} {'size':>4} {'turn':<16} {'frames':>6} {'main %':>7} {'after %':>7}"
        f" {'rejected':>8} {'unseen':>6}"
    )
    order = [name for name, _ in TONES] + ["dark"]
    for key in sorted(tallies, key=lambda k: (order.index(k[0]), k[1], TURNS.index(k[2]))):
        t = tallies[key]
        tone = f"{key[0]} ({counts[key[0]]} faces)"
        print(
            f"{tone:<22} {key[1]:>4} {key[2]:<16} {t.frames:>6} {100 * t.missed_main / t.frames:>7.1f}"
            f" {100 * t.missed_after / t.frames:>7.1f} {t.rejected:>8} {t.unseen:>6}"
        )
    print("\nby size (all tones and turns):")
    for size in sorted({k[1] for k in tallies}):
        group = [t for k, t in tallies.items() if k[1] == size]
        total = sum(t.frames for t in group)
        main, after = sum(t.missed_main for t in group), sum(t.missed_after for t in group)
        print(
            f"  {size:>3} px: main pass {100 * main / total:5.1f} %,"
            f" after fix {100 * after / total:5.1f} % missed"
        )


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--frames", type=int, default=40, help="frames per clip (one clip per size)")
    parser.add_argument(
        "--quick", action="store_true", help="12 frames, sizes 12 and 24: checks that it runs"
    )
    parser.add_argument("--workdir", type=Path, help="keep clips and jobs here (default: a temporary folder)")
    parser.add_argument("--scale-factor", type=float, help="inference size: this many times the frame's")
    args = parser.parse_args()
    frames, sizes = (12, (12, 24)) if args.quick else (args.frames, SIZES)
    found = sources()
    counts: dict[str, int] = defaultdict(int)
    for source in found:
        counts[source.tone] += 1
        print(f"{source.name}: ITA {source.ita:.0f} degrees, {source.tone}")
    scale = (
        (round(WIDTH * args.scale_factor), round(HEIGHT * args.scale_factor)) if args.scale_factor else None
    )
    options = ProcessOptions(detectors=(DetectorSpec(scale=scale),))
    print(f"inference size: {'x'.join(map(str, scale)) if scale else 'the frame size (default)'}")
    tallies: dict[tuple[str, int, str], Tally] = defaultdict(Tally)
    with tempfile.TemporaryDirectory(prefix="faceblur-bench-fairness-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for size, scene in zip(sizes, BACKGROUNDS, strict=False):
            places = layout_places(found, size)
            video, output, job = (
                root / f"faces-{size}.mp4",
                root / f"faces-{size}.blurred.mp4",
                root / f"job-{size}",
            )
            write_video(video, render(places, face_free_still(scene), frames))
            started = time.monotonic()
            blur(str(video), str(output), options, workers=1, chunks=1, workdir=job, keep_intermediates=True)
            print(
                f"{size} px on {scene.value}: {frames} frames in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            measure(places, job, frames, options.mask_scale, tallies)
    print()
    print_table(tallies, counts)


if __name__ == "__main__":
    main()
