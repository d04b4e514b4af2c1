#!/usr/bin/env python3
"""What keeping the input's bit depth and frame size costs: decode, anonymize and encode per frame
for the same 720p face clip coded 8-bit 4:2:0, 10-bit 4:2:0 (High 10) and at an odd size (4:4:4,
High 4:4:4 Predictive), each stage single-threaded (CPU time of this thread; the least of --repeat
runs, since other work only adds) with the job's x264 settings (veryfast, CRF 18), and the size of
the encoded chunk.

Usage: python bench/bench_depth.py [--frames 48] [--repeat 3]
Not a test: it prints figures (docs/performance.md keeps them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from faceblur.job.manifest import Box
from faceblur.media.codec import ChunkEncoder, decode_frames, stream_facts
from faceblur.process.masking import anonymized
from faceblur_contract.options import ProcessOptions
from faceblur_testenv.videos import Colour, FaceVideo, VideoLibrary, VideoSpec

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.thread_time()
    result = work()
    return result, time.thread_time() - started


def measure(video: FaceVideo, options: ProcessOptions, target: Path) -> tuple[list[float], int]:
    """Seconds of decode, anonymize and encode for the whole clip, and the encoded size in bytes."""
    facts = stream_facts(video.path)
    frames, decode_s = timed(lambda: list(decode_frames(video.path, threads=1)))
    boxes = [
        [Box(x1=f.x1, y1=f.y1, x2=f.x2, y2=f.y2, score=1.0, detector="known") for f in faces]
        for faces in video.faces
    ]
    out, anonymize_s = timed(
        lambda: [anonymized(f, b, options, facts) for f, b in zip(frames, boxes, strict=True)]
    )

    def encode() -> None:
        with ChunkEncoder(target, facts, 18, "veryfast", threads=1) as encoder:
            for frame in out:
                encoder.encode(frame)

    _, encode_s = timed(encode)
    return [decode_s, anonymize_s, encode_s], target.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = {
        "8-bit 4:2:0 1280x720": VideoSpec(width=1280, height=720, frames=args.frames),
        "10-bit 4:2:0 1280x720": VideoSpec(
            width=1280, height=720, frames=args.frames, colour=Colour.BT709_10BIT
        ),
        "8-bit odd 1279x719": VideoSpec(width=1279, height=719, frames=args.frames, codec="vp9"),
    }
    options = ProcessOptions()
    with tempfile.TemporaryDirectory(prefix="faceblur-bench-depth-") as tmp:
        library = VideoLibrary(Path(tmp))
        print(
            f"{'input':24} {'format':12} {'decode ms':>10} {'anonymize ms':>13} {'encode ms':>10} {'kB':>7}"
        )
        for name, spec in cases.items():
            video = library.get(spec)
            runs = [measure(video, options, Path(tmp) / "processed.mkv") for _ in range(args.repeat)]
            best = [min(run[0][stage] for run in runs) for stage in range(3)]
            per_frame = [1000 * s / video.frame_count for s in best]
            print(
                f"{name:24} {stream_facts(video.path).processing_pix_fmt:12} {per_frame[0]:10.1f}"
                f" {per_frame[1]:13.1f} {per_frame[2]:10.1f} {runs[-1][1] / 1000:7.0f}"
            )


if __name__ == "__main__":
    main()
