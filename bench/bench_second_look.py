#!/usr/bin/env python3
"""What CenterFace's second look costs: the detector alone, CPU time per frame, three ways side by side.

- **none**: the frame's own look only (`SECOND_LOOK_MAX` and `CLOSE_LOOK_MAX` 0);
- **upright**: the second look at weak small candidates, enlarged, without the rolled look
  (`ROLL_LOOK_ANGLES` empty) or the close look;
- **rolled**: the second look with the rolled look (30 degrees each way) where a window looks
  face-like but scores under the threshold, without the close look;
- **default**: what the product runs, the above and the close look at weak candidates of 24-48 px
  (upright and turned back).

Clips: the face-free photos (scikit-image's coffee, rocket, cat) as 848x480 frames with handheld
shake (faceblur_testenv.facefree), and bench_fairness's clips of 28 faces (7 photos x 4 turns) of
16 and 32 px over a real background at 640x360. Each cell is the best of --repeat passes over
--frames frames, one frame a call, onnxruntime on one thread (the detector's own cost, no pipeline).
The windows column counts the second-look windows a frame (upright, rolled and close) of the default.

Usage: python bench/bench_second_look.py [--frames 24] [--repeat 2]
Not a test: it prints figures (docs/quality.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from faceblur.detectors import build_detector, centerface
from faceblur_contract.enums import ExecutionProvider
from faceblur_contract.options import DetectorSpec
from faceblur_testenv.facefree import FaceFreeScene, FaceFreeSpec, face_free_still, render_frames

sys.path.insert(0, str(Path(__file__).parent))
import bench_fairness

# per variant: the centerface module's settings it changes
VARIANTS: dict[str, dict[str, object]] = {
    "none": {"SECOND_LOOK_MAX": 0, "CLOSE_LOOK_MAX": 0},
    "upright": {"ROLL_LOOK_ANGLES": (), "CLOSE_LOOK_MAX": 0},
    "rolled": {"CLOSE_LOOK_MAX": 0},
    "default": {},
}


@contextmanager
def variant(name: str) -> Iterator[None]:
    changes = VARIANTS[name]
    saved = {key: getattr(centerface, key) for key in changes}
    for key, value in changes.items():
        setattr(centerface, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(centerface, key, value)


class CountingSession:
    """The detector's session, counting the second-look windows it is given (128x128 inputs)."""

    def __init__(self, session: object) -> None:
        self.session, self.windows = session, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.session, name)

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feed.values()))
        if batch.shape[2:] == (centerface.SECOND_LOOK_SIZE, centerface.SECOND_LOOK_SIZE):
            self.windows += batch.shape[0]
        return self.session.run(names, feed)  # type: ignore[attr-defined,no-any-return]


def clips(frames: int) -> dict[str, list[np.ndarray]]:
    found: dict[str, list[np.ndarray]] = {}
    for scene in FaceFreeScene:
        found[f"{scene.value} (face-free, 848x480)"] = render_frames(FaceFreeSpec(scene=scene, frames=frames))
    sources = bench_fairness.sources()
    for size, scene in ((16, FaceFreeScene.ROCKET), (32, FaceFreeScene.COFFEE)):
        places = bench_fairness.layout_places(sources, size)
        found[f"28 faces of {size} px (640x360)"] = bench_fairness.render(
            places, face_free_still(scene), frames
        )
    return found


def cpu_ms_per_frame(detector: centerface.CenterFaceDetector, frames: list[np.ndarray], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for frame in frames:
            detector([frame])
        best = min(best, (time.process_time() - started) * 1000 / len(frames))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    detector = build_detector([DetectorSpec()], ExecutionProvider.CPU, threads=1).detectors[0]
    assert isinstance(detector, centerface.CenterFaceDetector)
    counting = CountingSession(detector._session)
    detector._session = counting  # type: ignore[assignment]
    columns = "".join(f" {label:>8}" for label in VARIANTS)
    print(f"{'clip':<34}{columns} {'cost':>8} {'windows':>8}  (CPU ms/frame)")
    for name, frames in clips(args.frames).items():
        ms = {}
        for label in VARIANTS:
            with variant(label):
                counting.windows = 0
                ms[label] = cpu_ms_per_frame(detector, frames, args.repeat)
                windows = counting.windows / (args.repeat * len(frames))
        cost = 100 * (ms["default"] / ms["none"] - 1)
        cells = "".join(f" {ms[label]:>8.1f}" for label in VARIANTS)
        print(f"{name:<34}{cells} {cost:>+7.0f}% {windows:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
