#!/usr/bin/env python3
"""Several chunk pipelines sharing one detector against one pipeline, in one worker, on the same job.

A 1080p clip with faces (bench_vs_deface's) is split once into --chunks chunks; then, alternating,
--repeat pairs of `faceblur process --all` runs on a fresh copy of the split job: one pipeline
(`--pipelines 1`: today's worker, its lanes calling the detector) and --pipelines N (N pipelines
sharing one detector that batches their frames), both with --threads cores. Printed: wall seconds,
frames/s, CPU seconds, peak memory, the best of the pairs and the ratio.

Usage: python bench/bench_pipelines.py [--seconds 8] [--chunks 8] [--threads 2] [--pipelines 2]
       [--scale 960x540] [--repeat 2] [--workdir DIR]
Not a test: it prints figures. Target on a 2-core machine: N=2 no slower than one pipeline.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_vs_deface import VENV_BIN, Run, make_clip, timed


def split(clip: Path, job: Path, chunks: int) -> None:
    command = [str(VENV_BIN / "faceblur"), "split", "--input", str(clip), "--job", str(job)]
    timed([*command, "--chunks", str(chunks), "--owner", "bench"], job.parent / "split.log")


def process(template: Path, work: Path, threads: int, pipelines: int, scale: str) -> Run:
    job = work / f"job-{pipelines}"
    shutil.rmtree(job, ignore_errors=True)
    shutil.copytree(template, job)
    command = [str(VENV_BIN / "faceblur"), "process", "--job", str(job), "--all"]
    command += ["--threads", str(threads), "--pipelines", str(pipelines), "--scale", scale]
    return timed(command, work / f"process-{pipelines}.log")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pipelines", type=int, default=2)
    parser.add_argument("--scale", default="960x540")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    frames = make_clip(clip, args.seconds)
    template = work / "split"
    shutil.rmtree(template, ignore_errors=True)
    split(clip, template, args.chunks)
    runs: dict[int, list[Run]] = {1: [], args.pipelines: []}
    for _ in range(args.repeat):
        for count in runs:
            runs[count].append(process(template, work, args.threads, count, args.scale))
    print(f"{frames} frames 1080p, {args.chunks} chunks, --threads {args.threads}, --scale {args.scale}")
    print(f"{'pipelines':>9} {'wall s':>7} {'frames/s':>8} {'CPU s':>7} {'peak MiB':>8}  (each run)")
    for count, each in runs.items():
        for run in each:
            line = f"{count:>9} {run.seconds:>7.1f} {frames / run.seconds:>8.2f} {run.cpu_seconds:>7.1f}"
            print(f"{line} {run.tree_rss_mib:>8.0f}")
    best = {count: min(r.seconds for r in each) for count, each in runs.items()}
    print(
        f"best: 1 pipeline {frames / best[1]:.2f} frames/s, {args.pipelines} pipelines"
        f" {frames / best[args.pipelines]:.2f} frames/s: x{best[1] / best[args.pipelines]:.3f}"
    )


if __name__ == "__main__":
    main()
