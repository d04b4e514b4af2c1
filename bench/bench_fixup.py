#!/usr/bin/env python3
"""What the fix-up (verify and fix, `faceblur.verify.fixup`) costs: processing time with it on and off.

Each clip runs through `faceblur.job.blur.blur` (what the CLI runs) in two chunks, with the fix-up
off (`--no-verify-fix`: the check only reports, as before issue 23) and on (the default), in turns,
`--repeats` times; the table gives the best wall time and the best CPU time of the process (every
thread: decode, detect, check, fix-up, encode) of each, their difference in per cent, the frames the
fix-up anonymized and the frames where a known face is left sharp with it off and on. Clips:

* group: six real faces (insightface t1.jpg, 848x480) at the defaults: what the check finds on a
  correct output, the fix-up's cost where it has little to fix;
* group-missed: the same at --thresh 0.85 without smoothing, which leaves one face sharp in most
  frames: the fix-up follows it through every frame (its worst case);
* coffee: a face-free real photo filmed handheld (848x480): nothing to fix.

Target (issue 23): at most 15 % more processing time on face videos, none on face-free video. The
machine's other load moves wall times; CPU times move less. Not a test: it prints figures.

Usage: python bench/bench_fixup.py [--frames 100] [--repeats 2] [--workdir DIR] [--clips group ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from faceblur.job.blur import blur
from faceblur_contract.options import DetectorSpec, ProcessOptions, VerifyOptions
from faceblur_contract.records import VerificationReport
from faceblur_testenv.facefree import FaceFreeLibrary, FaceFreeScene, FaceFreeSpec
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.videos import FaceVideo, Scene, VideoLibrary, VideoSpec

SHARP_RATIO = 0.25
MISSED = ProcessOptions(detectors=(DetectorSpec(threshold=0.85),), look_back=0, look_ahead=0)


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    fixed_frames: int
    left_sharp: int | None  # None: a face-free clip


def run(source: Path, work: Path, name: str, options: ProcessOptions, video: FaceVideo | None) -> Timing:
    output = work / f"{name}.mp4"
    wall, cpu = time.monotonic(), time.process_time()
    blur(str(source), str(output), options, workers=1, chunks=2, workdir=work / f"{name}.job")
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    report = VerificationReport.model_validate_json(output.with_suffix(".verify.json").read_bytes())
    sharp = len(frames_with_a_sharp_face(video, output, SHARP_RATIO)) if video is not None else None
    return Timing(wall, cpu, report.summary.fixed_frames, sharp)


def measure(
    source: Path, work: Path, clip: str, options: ProcessOptions, video: FaceVideo | None, repeats: int
) -> None:
    runs: dict[bool, list[Timing]] = {False: [], True: []}
    for attempt in range(repeats):
        for fix in (False, True):
            chosen = replace(options, verification=replace(options.verification, fix=fix))
            runs[fix].append(run(source, work, f"{clip}-{'on' if fix else 'off'}-{attempt}", chosen, video))
    off, on = runs[False], runs[True]
    wall_off, wall_on = min(t.wall for t in off), min(t.wall for t in on)
    cpu_off, cpu_on = min(t.cpu for t in off), min(t.cpu for t in on)
    print(
        f"{clip:<14} {wall_off:7.1f} {wall_on:7.1f} {100 * (wall_on / wall_off - 1):+6.1f} %"
        f" {cpu_off:7.1f} {cpu_on:7.1f} {100 * (cpu_on / cpu_off - 1):+6.1f} %"
        f" {on[0].fixed_frames:6d} {_sharp(off[0]):>6} {_sharp(on[0]):>6}",
        flush=True,
    )


def _sharp(timing: Timing) -> str:
    return "-" if timing.left_sharp is None else str(timing.left_sharp)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting (best kept)")
    parser.add_argument("--workdir", type=Path, help="keep clips and jobs here (default: a temporary folder)")
    parser.add_argument("--clips", nargs="+", default=["group", "group-missed", "coffee"], help="which clips")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fixup-") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        group = VideoLibrary(root / "videos").get(
            VideoSpec(scene=Scene.GROUP, width=848, height=480, frames=args.frames)
        )
        coffee = FaceFreeLibrary(root / "facefree").get(
            FaceFreeSpec(scene=FaceFreeScene.COFFEE, frames=args.frames)
        )
        print(f"{args.frames} frames 848x480, two chunks, best of {args.repeats}")
        print(
            f"{'clip':<14} {'wall off':>7} {'wall on':>7} {'cost':>8} {'CPU off':>7} {'CPU on':>7}"
            f" {'cost':>8} {'fixed':>6} {'sharp off':>6} {'sharp on':>6}"
        )
        defaults = ProcessOptions(verification=VerifyOptions())
        clips = {
            "group": (group.path, defaults, group),
            "group-missed": (group.path, MISSED, group),
            "coffee": (coffee, defaults, None),
        }
        for clip in args.clips:
            source, options, video = clips[clip]
            measure(source, root, clip, options, video, args.repeats)


if __name__ == "__main__":
    main()
