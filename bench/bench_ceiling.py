#!/usr/bin/env python3
"""The chunk pipeline against its own ceiling, and against deface, on the same clip and settings.

1. Each stage alone, single-threaded, on the clip's frames: decode, resize/convert to the
   detector's input, the detector (at --scale, in batches of --batch-size), anonymize the
   faces it found, encode with the job's x264 settings, the verification pass (on the frames
   given to the encoder, as the pipeline runs it); measured before each pair, each stage's
   least time kept (other work only adds). The ceiling for this machine is
   cores / (sum of the stages' CPU time per frame): what the cores can do if nothing but
   the stages ran and they never waited. The same stages are measured again with every core
   running them at once (one process per core): the ceiling with all cores busy, which is
   what the pipeline is, caches and memory shared. Where onnxruntime offers a GPU the detector runs
   there, its CPU time per frame counts, and the GPU's own time per frame is a second limit.
2. `faceblur blur` and deface, alternating, --repeat pairs, from the command line as a user
   runs them (same model, inference scale, x264 veryfast CRF 18, audio kept): frames/s,
   CPU time, peak memory; faceblur's per-stage CPU time inside the pipeline from its log.
3. With --long-minutes M, a long-input check: the clip looped to M minutes through
   `faceblur.job.blur.blur` (what `faceblur blur` runs) in a child process; its memory is sampled
   and frames/s reported per tenth of the run, so growth in either shows.

Usage: python bench/bench_ceiling.py [--seconds 8] [--scale 960x540] [--repeat 3]
       [--long-minutes 10] [--workdir DIR] [--no-deface]
Not a test: it prints figures. Targets on a 2-core machine: faceblur >= 0.85 of the
ceiling and >= 3x deface (best of the pairs). CPU times are steadier than wall times
when other work shares the machine; both are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av
    from faceblur_contract.options import DetectorSpec

sys.path.insert(0, str(Path(__file__).parent))
from bench_vs_deface import MATCHED_ENCODER, VENV_BIN, Run, count_frames, make_clip, timed

CRF, PRESET = 18, "veryfast"  # faceblur's defaults, given to deface too
STAGE_LINE = re.compile(r"chunk (\d+): stage CPU s (.*?) \((\d+) frames encoded")
STAGE_FRAMES = 100  # frames the stages are measured on (the clip's first ones), before each pair


@dataclass(frozen=True)
class Stage:
    name: str
    frames: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.frames

    @property
    def wall_ms(self) -> float:
        return 1000 * self.wall_s / self.frames


def cores() -> int:
    from faceblur.process.threadplan import available_cores

    return available_cores()


def measure_stages(
    clip: Path, scale: tuple[int, int], batch: int, verify: bool = True, runtime: str = "auto"
) -> tuple[list[Stage], str, float | None]:
    """Each stage alone, one thread each; returns the stages, the detector's provider and its GPU ms/frame."""
    import cv2
    from faceblur.anonymization.anonymize import MaskStyle, anonymize_i420
    from faceblur.detectors import build_detector
    from faceblur.detectors.providers import runs_on_gpu
    from faceblur.media import codec
    from faceblur.process.threadplan import plan_threads
    from faceblur_contract.enums import DetectorName, ExecutionProvider
    from faceblur_contract.options import DetectorSpec

    cv2.setNumThreads(1)
    stages: list[Stage] = []

    def timed_stage(name: str, count: int, work: Callable[[], object]) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        stages.append(Stage(name, count, time.process_time() - cpu, time.perf_counter() - wall))
        return result

    frames = timed_stage(
        "decode", STAGE_FRAMES, lambda: list(codec.decode_frames(clip, limit=STAGE_FRAMES, threads=1))
    )
    assert isinstance(frames, list)
    count = len(frames)
    facts = codec.stream_facts(clip)
    spec = DetectorSpec(name=DetectorName.CENTERFACE, scale=scale)
    detector = build_detector([spec], ExecutionProvider(runtime), 1)
    (size,) = detector.stretch_sizes(facts.width, facts.height)
    images = timed_stage("resize", count, lambda: [codec.to_bgr(f, size) for f in frames])
    assert isinstance(images, list)
    centerface = detector.detectors[0]
    provider = centerface._session.get_providers()[0]  # type: ignore[attr-defined]
    detector.detect_resized([{size: images[0]}] * batch, facts.width, facts.height)  # warm-up

    def detect() -> list[np.ndarray]:
        found: list[np.ndarray] = []
        for start in range(0, count, batch):
            chunk = [{size: image} for image in images[start : start + batch]]
            found += [d[centerface.name] for d in detector.detect_resized(chunk, facts.width, facts.height)]
        return found

    boxes = timed_stage("detect", count, detect)
    assert isinstance(boxes, list)
    gpu_ms = stages[-1].wall_ms if runs_on_gpu([provider]) else None
    style = MaskStyle()

    def anonymized() -> list[object]:
        out = []
        for frame, found in zip(frames, boxes, strict=True):
            if not len(found):
                out.append(frame)
                continue
            planes = codec.i420_planes(frame)
            coords = [tuple(b[:4]) for b in found.tolist()]
            anonymize_i420(planes, facts.width, facts.height, coords, style, facts.full_range)
            out.append(codec.frame_from_i420(planes, frame))
        return out

    outputs = timed_stage("anonymize", count, anonymized)
    assert isinstance(outputs, list)
    with tempfile.TemporaryDirectory() as tmp:

        def encode() -> None:
            with codec.ChunkEncoder(Path(tmp) / "out.mkv", facts, CRF, PRESET, threads=1) as encoder:
                for frame in outputs:
                    encoder.encode(frame)

        timed_stage("encode", count, encode)
    if verify:  # faceblur run with --no-verify: the check is no stage of the pipeline
        per_call = plan_threads(1, gpu_ms is not None).check_batch(batch)
        verify_stage(outputs, count, spec, (facts.width, facts.height), runtime, per_call, timed_stage)
    faces = sum(len(b) for b in boxes) / max(1, count)
    print(f"  stages measured on {count} frames, {faces:.1f} faces per frame, detector on {provider}")
    return stages, provider, gpu_ms


def measure_stages_loaded(
    clip: Path, scale: tuple[int, int], batch: int, verify: bool, runtime: str, copies: int
) -> list[Stage]:
    """The same stages with every core busy: `copies` processes measure at once, their means kept.

    What a stage costs when it shares the memory system and caches with as many others
    as there are cores (what the pipeline does all the time), not with the machine to itself.
    """
    command = [sys.executable, __file__, "--stages-child", str(clip), f"{scale[0]}x{scale[1]}", str(batch)]
    command += ([] if verify else ["--no-verify"]) + [f"--execution-provider={runtime}"]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    measured = [json.loads(child.communicate()[0].splitlines()[-1]) for child in children]
    return [
        Stage(name, frames, sum(m[i][2] for m in measured) / copies, sum(m[i][3] for m in measured) / copies)
        for i, (name, frames, *_) in enumerate(measured[0])
    ]


def runtime_of(faceblur_args: Sequence[str]) -> str:
    """The --execution-provider given to faceblur (after --), so its stages are timed on the same."""
    for i, arg in enumerate(faceblur_args):
        if arg.startswith("--execution-provider="):
            return arg.split("=", 1)[1]
        if arg == "--execution-provider" and i + 1 < len(faceblur_args):
            return faceblur_args[i + 1]
    return "auto"


def stages_child(clip: str, scale: str, batch: str, *flags: str) -> None:
    width, height = (int(v) for v in scale.split("x"))
    stages, _, _ = measure_stages(
        Path(clip), (width, height), int(batch), "--no-verify" not in flags, runtime_of(list(flags))
    )
    print(json.dumps([(s.name, s.frames, s.cpu_s, s.wall_s) for s in stages]), flush=True)


def verify_stage(
    encoded: list[av.VideoFrame],
    count: int,
    spec: DetectorSpec,
    upright: tuple[int, int],
    runtime: str,
    per_call: int,
    timed_stage: Callable[..., object],
) -> None:
    """The verification pass as each chunk worker runs it: the sampled frames given to the encoder,
    re-detected with the sensitive detector (faceblur.verify.chunkpass), `per_call` frames a call as the
    worker's thread plan has it (one on a CPU); skipped when it is off."""
    from faceblur.detectors import build_detector
    from faceblur.media import codec
    from faceblur.verify import residual
    from faceblur.verify.chunkpass import sensitive_specs
    from faceblur_contract.enums import ExecutionProvider
    from faceblur_contract.options import VerifyOptions

    check = VerifyOptions()
    if not check.enabled:
        return
    detector = build_detector(sensitive_specs([spec], upright, check), ExecutionProvider(runtime), 1)

    def run() -> None:
        images = [
            codec.to_bgr(frame)
            for number, frame in enumerate(encoded)
            if residual.is_sampled(number, check.every)
        ]
        for start in range(0, len(images), per_call):
            detector.detect_each(images[start : start + per_call])

    timed_stage("verify", count, run)


def stage_cpu_from_log(log: Path) -> tuple[dict[str, float], int]:
    """The pipeline's per-stage CPU seconds summed over its chunks, and the frames encoded."""
    totals: dict[str, float] = {}
    frames = 0
    for match in STAGE_LINE.finditer(log.read_text()):
        for pair in match.group(2).split():
            name, value = pair.split("=")
            totals[name] = totals.get(name, 0.0) + float(value)
        frames += int(match.group(3))
    return totals, frames


def pipeline_breakdown(totals: dict[str, float], frames: int) -> dict[str, float]:
    """ms/frame per stage as the alone-stages name them; render minus its parts is smoothing and Python."""
    ms = {name: 1000 * seconds / max(1, frames) for name, seconds in totals.items()}
    if "render" in ms:
        ms["smooth+other"] = ms.pop("render") - ms.get("anonymize", 0.0) - ms.get("encode", 0.0)
    return ms


def print_table(rows: Sequence[tuple[str, ...]], header: Sequence[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (tuple(header), *rows):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        print("  ".join(cells))


def least(measurements: Sequence[list[Stage]]) -> list[Stage]:
    """Each stage's least CPU and wall time over the measurements: other work only ever adds time."""
    return [
        Stage(
            first.name,
            first.frames,
            min(m[i].cpu_s for m in measurements),
            min(m[i].wall_s for m in measurements),
        )
        for i, first in enumerate(measurements[0])
    ]


def run_pairs(
    clip: Path, workdir: Path, args: argparse.Namespace, before_pair: Callable[[], None]
) -> tuple[dict[str, list[Run]], list[Path], int]:
    frames = count_frames(clip)
    faceblur = [str(VENV_BIN / "faceblur"), "blur", str(clip), "-o", str(workdir / "faceblur.mp4")]
    faceblur += ["--scale", args.scale, "--batch-size", str(args.batch_size), "-v", *args.faceblur_args]
    deface = [str(VENV_BIN / "deface"), str(clip), "-o", str(workdir / "deface.mp4"), "--scale", args.scale]
    deface += ["-k", "--ffmpeg-config", MATCHED_ENCODER]
    tools = [("faceblur", faceblur)] + ([] if args.no_deface else [("deface", deface)])
    runs: dict[str, list[Run]] = {name: [] for name, _ in tools}
    logs = []
    for attempt in range(args.repeat):
        before_pair()
        for name, command in tools:
            shutil.rmtree(workdir / ".faceblur.mp4.faceblur", ignore_errors=True)
            log = workdir / f"{name}-{attempt}.log"
            run = timed(command, log)
            runs[name].append(run)
            if name == "faceblur":
                logs.append(log)
            print(
                f"  {name} run {attempt + 1}: {run.seconds:.1f} s, {frames / run.seconds:.2f} frames/s, "
                f"{run.cpu_seconds / frames * 1000:.0f} CPU ms/frame, {run.max_rss_mib:.0f} MiB",
                flush=True,
            )
    return runs, logs, frames


def cpu_ms_per_frame(stages: Sequence[Stage]) -> float:
    return sum(s.cpu_ms for s in stages)


def report(
    stages: list[Stage], busy: list[Stage], measured: list[list[Stage]], provider: str,
    gpu_ms: float | None, runs: dict[str, list[Run]], logs: list[Path], frames: int,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    """`stages` and `busy`: each stage's least time; `measured`: the stages timed before each pair."""
    n = cores()
    cpu_sum, busy_sum = cpu_ms_per_frame(stages), cpu_ms_per_frame(busy)
    ceiling, busy_ceiling = n * 1000 / cpu_sum, n * 1000 / busy_sum
    limits = [
        f"{n} cores / {cpu_sum:.0f} CPU ms per frame = {ceiling:.2f} frames/s",
        f"with all cores busy {n} / {busy_sum:.0f} = {busy_ceiling:.2f} frames/s",
    ]
    if gpu_ms is not None:
        limits.append(f"GPU {1000 / gpu_ms:.1f} frames/s ({gpu_ms:.1f} ms per frame)")
        ceiling = min(ceiling, 1000 / gpu_ms)
        busy_ceiling = min(busy_ceiling, 1000 / gpu_ms)
    added = 1000 / sum(s.wall_ms for s in stages)
    best = {name: min(r, key=lambda run: run.seconds) for name, r in runs.items()}
    fb = best["faceblur"]
    index = runs["faceblur"].index(fb)
    breakdown = pipeline_breakdown(*stage_cpu_from_log(logs[index]))
    print()
    print(f"clip: 1920x1080, {frames} frames; inference scale {args.scale}, batch {args.batch_size};")
    print(f"machine: {n} cores, detector on {provider}; load average {os.getloadavg()[0]:.1f}")
    print(f"ceiling: {'; '.join(limits)}; stages one after another: {added:.2f} frames/s")
    print()
    rows = []
    for stage, loaded in zip(stages, busy, strict=True):
        inside = breakdown.get(stage.name)
        rows.append(
            (stage.name, f"{stage.cpu_ms:.1f}", f"{loaded.cpu_ms:.1f}", f"{inside:.1f}" if inside else "-")
        )
    if "smooth+other" in breakdown:
        rows.append(("smooth+other", "-", "-", f"{breakdown['smooth+other']:.1f}"))
    inside_sum = sum(breakdown.values())
    rows.append(("sum", f"{cpu_sum:.1f}", f"{busy_sum:.1f}", f"{inside_sum:.1f}"))
    rows.append(("whole run (CPU / frames)", "-", "-", f"{fb.cpu_seconds / frames * 1000:.1f}"))
    header = ("stage", "alone CPU ms/frame", "all cores busy CPU ms/frame", "in faceblur CPU ms/frame")
    print_table(rows, header)
    print()
    tools = [
        (
            "ceiling",
            "-",
            f"{ceiling:.2f}",
            "-",
            f"{cpu_sum:.0f}",
            "-",
            "-",
        )
    ]
    for name, run in best.items():
        tools.append(
            (
                name,
                f"{run.seconds:.1f}",
                f"{frames / run.seconds:.2f}",
                f"{run.cpu_seconds:.1f}",
                f"{run.cpu_seconds / frames * 1000:.0f}",
                f"{run.max_rss_mib:.0f}",
                f"{run.tree_rss_mib:.0f}",
            )
        )
    print_table(tools, ("tool", "wall s", "frames/s", "CPU s", "CPU ms/frame", "max RSS MiB", "tree RSS MiB"))
    share = frames / fb.seconds / ceiling
    busy_share = frames / fb.seconds / busy_ceiling
    used = fb.cpu_seconds / fb.seconds / n
    # Each run against the stages timed just before it: the machine's drift shows as their spread.
    pairs = zip(runs["faceblur"], measured, strict=True)
    own = [frames / run.seconds * cpu_ms_per_frame(m) / (n * 1000) for run, m in pairs]
    print()
    print(
        f"faceblur reaches {share:.2f} of the ceiling (target >= 0.85), {busy_share:.2f} of the ceiling with"
    )
    print(f"all cores busy; its cores were busy {used:.0%} of its wall time; each run against the stages")
    print("timed just before it: " + ", ".join(f"{o:.2f}" for o in own))
    if "deface" in best:
        ratio = best["deface"].seconds / fb.seconds
        cpu_ratio = min(r.cpu_seconds for r in runs["deface"]) / min(r.cpu_seconds for r in runs["faceblur"])
        pairs = [d.seconds / f.seconds for f, d in zip(runs["faceblur"], runs["deface"], strict=True)]
        print(f"faceblur/deface throughput: {ratio:.2f}x best against best (target >= 3x); pairs: "
              + ", ".join(f"{p:.2f}x" for p in pairs))  # fmt: skip
        print(f"deface/faceblur CPU time: {cpu_ratio:.2f}x (steadier when the machine is shared)")
        reach = ceiling * best["deface"].seconds / frames
        print(f"the ceiling itself is {reach:.2f}x deface here: 3x deface takes {3 / reach:.2f} of it")
    cpu_share = cpu_sum / (fb.cpu_seconds / frames * 1000)
    print(f"faceblur's whole-run CPU per frame is {1 / cpu_share:.2f}x the stages' sum (1.00: no overhead)")
    if os.getloadavg()[0] > n:
        load = os.getloadavg()[0]
        print(f"note: load average {load:.1f} on {n} cores: other work competed, wall times are noisy")


def long_check(clip: Path, workdir: Path, minutes: float, args: argparse.Namespace) -> None:
    """Loop the clip to `minutes` (video stream copy: a looped AAC track's timestamps overlap) and run
    it through blur in a child, sampling memory."""
    long_clip = workdir / f"long-{minutes:g}min.mp4"
    if not long_clip.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1",
             "-i", str(clip), "-t", str(minutes * 60), "-an", "-c", "copy", str(long_clip)],
            check=True,
        )  # fmt: skip
    frames = count_frames(long_clip)
    print(f"\nlong input: {long_clip.name}, {frames} frames", flush=True)
    out = workdir / "long-out.mp4"
    shutil.rmtree(workdir / ".long-out.mp4.faceblur", ignore_errors=True)
    command = [sys.executable, __file__, "--long-child", str(long_clip), str(out), args.scale]
    command.append(str(args.batch_size))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []  # (time, tree RSS KiB)
    stop = threading.Event()
    from bench_vs_deface import _tree_rss_kib

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append((time.monotonic(), _tree_rss_kib(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    progress: list[tuple[float, int]] = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("frames "):
            progress.append((time.monotonic(), int(line.split()[1])))
    code = process.wait()
    stop.set()
    sampler.join()
    if not progress:
        sys.exit(f"long run failed ({code}) before any frame was done")
    start, total = progress[0][0], progress[-1][1]
    print("tenth  frames/s  tree RSS MiB (max in that tenth)")
    for tenth in range(10):
        lo, hi = total * tenth // 10, total * (tenth + 1) // 10
        inside = [(t, n) for t, n in progress if lo <= n <= hi]
        if len(inside) < 2:
            continue
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        rss = [kib for t, kib in samples if t0 <= t <= t1]
        rate = (n1 - n0) / max(t1 - t0, 1e-9)
        print(f"{tenth + 1:5}  {rate:8.2f}  {max(rss) / 1024 if rss else float('nan'):12.0f}")
    print(f"whole: {total / (progress[-1][0] - start):.2f} frames/s; peak tree RSS "
          f"{max(k for _, k in samples) / 1024:.0f} MiB")  # fmt: skip
    if code != 0:
        sys.exit(f"long run failed ({code}) after {total} frames")


def long_child(clip: str, out: str, scale: str, batch: str) -> None:
    """`faceblur blur` (default workers and threads) with a reporter that prints frames done."""
    from faceblur.job.blur import Reporter, blur
    from faceblur_contract.enums import DetectorName
    from faceblur_contract.options import DetectorSpec, ProcessOptions

    width, height = (int(v) for v in scale.split("x"))

    class Printer(Reporter):
        done = 0

        def frames(self, count: int) -> None:
            self.done += count
            if self.done % 25 == 0:
                print(f"frames {self.done}", flush=True)

    options = ProcessOptions(
        detectors=(DetectorSpec(name=DetectorName.CENTERFACE, scale=(width, height)),), batch_size=int(batch)
    )
    blur(clip, out, options, reporter=Printer())
    print(f"maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--long-child":
        long_child(*sys.argv[2:6])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--stages-child":
        stages_child(*sys.argv[2:])
        return
    from faceblur_contract.options import ProcessOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length (default 8 s at 25 fps)")
    parser.add_argument("--scale", default="960x540", help="inference scale given to both tools")
    parser.add_argument("--batch-size", type=int, default=ProcessOptions.batch_size, help="detector batch")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs, alternating; best kept")
    parser.add_argument("--long-minutes", type=float, help="also run the long-input check this long")
    parser.add_argument("--no-deface", action="store_true", help="skip deface (and the ratio)")
    parser.add_argument("--workdir", type=Path, help="keep the clip and outputs here")
    parser.add_argument("faceblur_args", nargs="*", help="extra options for faceblur blur (after --)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.scale.split("x"))

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="faceblur-ceiling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip = workdir / f"clip-1080p-{args.seconds:g}s.mp4"
    if not clip.exists():
        print(f"making a {args.seconds:g} s 1080p clip with 7 real faces and a tone: {clip}", flush=True)
        make_clip(clip, args.seconds)
    measured: list[list[Stage]] = []  # stages alone, before each pair
    loaded: list[list[Stage]] = []  # the same with all cores busy
    found: dict[str, object] = {}
    verify = "--no-verify" not in args.faceblur_args
    runtime = runtime_of(args.faceblur_args)

    def stages_alone() -> None:
        started = time.monotonic()
        stages, found["provider"], found["gpu_ms"] = measure_stages(
            clip, (width, height), args.batch_size, verify, runtime
        )
        measured.append(stages)
        loaded.append(measure_stages_loaded(clip, (width, height), args.batch_size, verify, runtime, cores()))
        alone, busy = (cpu_ms_per_frame(m[-1]) for m in (measured, loaded))
        print(
            f"  stages alone: {alone:.0f} CPU ms/frame, all cores busy: {busy:.0f}"
            f" ({time.monotonic() - started:.0f} s)",
            flush=True,
        )

    runs, logs, frames = run_pairs(clip, workdir, args, stages_alone)
    stages, provider = least(measured), str(found["provider"])
    busy_stages = least(loaded)
    gpu_ms = found["gpu_ms"] if isinstance(found["gpu_ms"], float) else None
    report(stages, busy_stages, measured, provider, gpu_ms, runs, logs, frames, args)
    summary = {
        "stages": {s.name: {"cpu_ms": s.cpu_ms, "wall_ms": s.wall_ms} for s in stages},
        "stages_all_cores_busy": {s.name: {"cpu_ms": s.cpu_ms, "wall_ms": s.wall_ms} for s in busy_stages},
        "runs": {name: [r.__dict__ for r in rs] for name, rs in runs.items()},
        "frames": frames,
        "cores": cores(),
        "provider": provider,
    }
    (workdir / "ceiling.json").write_text(json.dumps(summary, indent=1))
    if args.long_minutes:
        long_check(clip, workdir, args.long_minutes, args)
    print(f"files in {workdir}")


if __name__ == "__main__":
    main()
