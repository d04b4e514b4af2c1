#!/usr/bin/env python3
"""Throughput of `faceblur blur` against `deface` on the same 1080p clip with real faces.

Both run the same CenterFace model at the same inference scale (--scale) and the same x264 settings
(veryfast, CRF 18; --deface-ffmpeg-config "" gives deface its own medium preset), blur faces with
their defaults (threshold 0.2, mask scale 1.3, ellipse) and keep the audio (deface
--keep-audio). Each tool runs as it would for a user, from the command line, one after
the other, `--repeat` times (alternating); the best wall time of each is reported, with
frames/s, the ratio, the peak memory of the largest process (/usr/bin/time) and the peak
total memory of the process tree (sampled from /proc).

Usage: python bench/bench_vs_deface.py [--seconds 6] [--scale 640x360] [--repeat 2]
       [--workdir DIR] [-- extra faceblur options]
Not a test: it prints figures. Target: faceblur >= 1.5x deface on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 1920, 1080, 25
VENV_BIN = Path(sys.executable).parent
# deface's writer defaults to x264's `medium` preset; faceblur encodes with `veryfast` at CRF 18. Give
# deface the same encoder settings so the ratio compares face processing, not encoder presets.
MATCHED_ENCODER = '{"codec": "libx264", "output_params": ["-preset", "veryfast", "-crf", "18"]}'


def still(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        rgb = np.asarray(data.astronaut())  # type: ignore[no-untyped-call]
        return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    import insightface

    image = cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"))
    assert image is not None
    return image


def render_frame(n: int, frames: int, group: np.ndarray, astronaut: np.ndarray) -> np.ndarray:
    """The six faces of t1.jpg in a slow pan and zoom, plus the astronaut moving across."""
    u = n / max(frames - 1, 1)
    scale = 1.55 + 0.15 * u  # t1 (1280x886) covers the frame; faces about 160-200 px
    x0, y0 = 40 + 120 * u, 60 + 40 * u
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    frame = cv2.warpAffine(group, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    inset = cv2.resize(astronaut, (420, 420), interpolation=cv2.INTER_AREA)
    x, y = int(80 + 1300 * u), int(620 - 120 * np.sin(np.pi * u))
    frame[y : y + 420, x : x + 420] = inset
    return frame


def make_clip(path: Path, seconds: float) -> int:
    """H.264 with a keyframe every 2 s, as cameras and phones write (so split can stream-copy)."""
    frames = round(seconds * FPS)
    group, astronaut = still("t1"), still("astronaut")
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-pix_fmt", "yuv420p", "-g", str(2 * FPS),
        "-c:a", "aac", "-b:a", "128k", "-shortest", str(path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert process.stdin is not None
    for n in range(frames):
        process.stdin.write(render_frame(n, frames, group, astronaut).tobytes())
    process.stdin.close()
    if process.wait() != 0:
        sys.exit("ffmpeg failed to make the clip")
    return frames


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float  # user + system, every process of the run
    max_rss_mib: float  # largest single process
    tree_rss_mib: float  # whole process tree, sampled


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        match = re.search(r"VmRSS:\s+(\d+)", status)
        rss[int(entry)] = int(match.group(1)) if match else 0
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree)


def timed(command: list[str], log: Path) -> Run:
    report = log.with_suffix(".time")
    peak = 0
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", str(report), *command], stdout=out, stderr=out
        )
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.2):
                peak = max(peak, _tree_rss_kib(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        stop.set()
        sampler.join()
    seconds = time.monotonic() - started
    if code != 0:
        sys.exit(f"{command[0]} failed ({code}); see {log}:\n{log.read_text()[-2000:]}")
    text = report.read_text()

    def field(name: str) -> float:
        match = re.search(rf"{re.escape(name)}: ([\d.]+)", text)
        return float(match.group(1)) if match else float("nan")

    cpu = field("User time (seconds)") + field("System time (seconds)")
    return Run(seconds, cpu, field("Maximum resident set size (kbytes)") / 1024, peak / 1024)


def count_frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def has_audio(path: Path) -> bool:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return bool(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length (default 6 s at 25 fps)")
    parser.add_argument("--scale", default="640x360", help="inference scale given to both tools")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each tool, alternating; best kept")
    parser.add_argument("--workdir", type=Path, help="keep the clip and outputs here")
    parser.add_argument(
        "--deface-ffmpeg-config",
        default=MATCHED_ENCODER,
        help="JSON for deface --ffmpeg-config (default: faceblur's x264 veryfast CRF 18; '' for deface's)",
    )
    parser.add_argument("faceblur_args", nargs="*", help="extra options for faceblur blur (after --)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="faceblur-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip = workdir / "clip-1080p.mp4"
    if not clip.exists():
        print(f"making a {args.seconds:.0f} s 1080p clip with 7 real faces and a tone: {clip}", flush=True)
        make_clip(clip, args.seconds)
    frames = count_frames(clip)

    faceblur = [str(VENV_BIN / "faceblur"), "blur", str(clip), "-o", str(workdir / "faceblur.mp4")]
    faceblur += ["--scale", args.scale, *args.faceblur_args]
    deface = [
        str(VENV_BIN / "deface"),
        str(clip),
        "-o",
        str(workdir / "deface.mp4"),
        "--scale",
        args.scale,
        "-k",
    ]
    if args.deface_ffmpeg_config:
        deface += ["--ffmpeg-config", args.deface_ffmpeg_config]

    runs: dict[str, list[Run]] = {"faceblur": [], "deface": []}
    for attempt in range(args.repeat):
        for name, command in (("faceblur", faceblur), ("deface", deface)):
            shutil.rmtree(workdir / ".faceblur.mp4.faceblur", ignore_errors=True)
            run = timed(command, workdir / f"{name}-{attempt}.log")
            runs[name].append(run)
            print(
                f"  {name} run {attempt + 1}: {run.seconds:.1f} s, {frames / run.seconds:.2f} frames/s, "
                f"{run.cpu_seconds:.1f} CPU s",
                flush=True,
            )

    for name in runs:
        output = workdir / f"{name}.mp4"
        audio = "kept" if has_audio(output) else "MISSING"
        print(f"{name} output: {count_frames(output)} frames, audio {audio}")
    best = {name: min(r, key=lambda run: run.seconds) for name, r in runs.items()}
    print()
    cpus = os.cpu_count()
    print(f"clip: {WIDTH}x{HEIGHT}, {frames} frames at {FPS} fps; inference scale {args.scale}; {cpus} CPUs")
    header = ("wall s", "frames/s", "CPU s", "CPU ms/frame", "max RSS MiB", "tree RSS MiB")
    print(f"{'tool':10} " + " ".join(f"{h:>{max(8, len(h))}}" for h in header))
    for name, run in best.items():
        print(
            f"{name:10} {run.seconds:8.1f} {frames / run.seconds:8.2f} {run.cpu_seconds:8.1f} "
            f"{run.cpu_seconds / frames * 1000:12.0f} {run.max_rss_mib:11.0f} {run.tree_rss_mib:12.0f}"
        )
    ratio = best["deface"].seconds / best["faceblur"].seconds
    cpu_ratio = min(r.cpu_seconds for r in runs["deface"]) / min(r.cpu_seconds for r in runs["faceblur"])
    print(f"throughput ratio faceblur/deface (best wall times): {ratio:.2f}x (target >= 1.5x)")
    print(f"CPU time ratio deface/faceblur: {cpu_ratio:.2f}x (steadier when the machine is shared)")
    load = os.getloadavg()[0]
    if load > (cpus or 1):
        print(f"note: load average {load:.1f} on {cpus} CPUs: other work competed, wall times are noisy")
    print(f"files in {workdir}")


if __name__ == "__main__":
    main()
