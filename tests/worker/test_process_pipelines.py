"""One worker running several chunk pipelines that share one detector gives exactly the boxes and
frames of one pipeline over the whole video."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from detect_support import split_job
from faceblur.job.runner import process_pending
from faceblur_contract.enums import SplitMode
from faceblur_contract.exits import ExitCode
from faceblur_contract.options import ProcessOptions
from faceblur_contract.pods import CPU_REQUEST_ENV
from faceblur_testenv.measure import decode_bgr
from faceblur_testenv.videos import Scene, VideoLibrary, VideoSpec
from test_cli import run
from test_process import all_boxes, process_all

OPTIONS = ProcessOptions(batch_size=4, threads=2)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> VideoLibrary:
    return VideoLibrary(tmp_path_factory.mktemp("videos"))


def test_two_pipelines_sharing_a_detector_change_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    hidden = {8, 9, 10, 11, 12, 19, 20, 21, 29, 31, 32, 33}
    video = videos.get(
        VideoSpec(scene=Scene.GROUP, frames=40, gop=10, face_frames=frozenset(set(range(40)) - hidden))
    )
    whole = split_job(video.path, tmp_path / "one", chunks=1, mode=SplitMode.COPY)
    store, layout, manifest = split_job(video.path, tmp_path / "four", chunk_frames=10, mode=SplitMode.COPY)
    assert len(manifest.chunks) == 4
    process_all(*whole, OPTIONS)
    done: list[int] = []
    results = process_pending(
        store, layout, manifest, OPTIONS, on_done=lambda r: done.append(r.index), pipelines=2
    )
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert sorted(done) == [0, 1, 2, 3]
    assert not list((tmp_path / "four").rglob("*.lock"))  # every claim released
    one, four = all_boxes(*whole), all_boxes(store, layout, manifest)
    assert sorted(one) == sorted(four) == list(range(40))
    for frame in one:
        assert [(b.detector, b.source) for b in one[frame]] == [(b.detector, b.source) for b in four[frame]]
        for a, b in zip(one[frame], four[frame], strict=True):
            assert (a.x1, a.y1, a.x2, a.y2) == pytest.approx((b.x1, b.y1, b.x2, b.y2), abs=0.05)
    frames = sum(len(decode_bgr(tmp_path / "four" / layout.processed(c.index))) for c in manifest.chunks)
    assert frames == 40
    assert process_pending(store, layout, manifest, OPTIONS, pipelines=2) == []  # all done: nothing left


def four_chunk_job(videos: VideoLibrary, tmp_path: Path) -> Path:
    """A local job of 20 astronaut frames cut into four chunks of 5 (copied: a keyframe every 5)."""
    video = videos.get(VideoSpec(scene=Scene.ASTRONAUT, frames=20, gop=5))
    job = tmp_path / "job"
    cut = run(
        "split", "--input", str(video.path), "--job", str(job), "--chunk-frames", "5", "--split-mode", "copy"
    )
    assert cut.returncode == 0, cut.stderr[-2000:]
    return job


def test_a_pod_runs_a_pipeline_per_requested_core_over_its_indexes(
    videos: VideoLibrary, tmp_path: Path
) -> None:
    job = four_chunk_job(videos, tmp_path)
    log = tmp_path / "termination.log"
    done = run(
        "process", "--job", str(job), "--indexes", "0-3", "--batch-size", "4", "-v",
        env={CPU_REQUEST_ENV: "2000"}, log=log,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(log.read_text())["indexes"] == [0, 1, 2, 3]
    plans = re.findall(r"chunk \d: stage CPU s .*?ThreadPlan\(lanes=(\d)", done.stderr)
    assert plans == ["1"] * 4  # two pipelines of one lane each on the pod's two requested cores
    assert len(list((job / "results").iterdir())) == 4


def test_a_job_index_runs_its_group_of_chunks(videos: VideoLibrary, tmp_path: Path) -> None:
    """The operator's Indexed Job: JOB_COMPLETION_INDEX i with --chunks-per-index 3 runs chunks 3i..3i+2."""
    job = four_chunk_job(videos, tmp_path)
    log = tmp_path / "termination.log"

    def index(i: int) -> subprocess.CompletedProcess[str]:
        log.unlink(missing_ok=True)
        env = {"JOB_COMPLETION_INDEX": str(i), CPU_REQUEST_ENV: "2000"}
        return run(
            "process", "--job", str(job), "--chunks-per-index", "3", "--batch-size", "4", env=env, log=log
        )

    first = index(0)
    assert first.returncode == 0, first.stderr[-2000:]
    record = json.loads(log.read_text())
    assert record["indexes"] == [0, 1, 2]
    assert record["runtime"] == "CPUExecutionProvider"  # the status shows where a group's inference ran
    last = index(1)
    assert last.returncode == 0, last.stderr[-2000:]
    assert json.loads(log.read_text())["index"] == 3  # the short last group
    assert len(list((job / "results").iterdir())) == 4
    past = index(2)
    assert past.returncode == ExitCode.USAGE
    assert "past the job's 4 chunks (indexes 0-1)" in past.stderr
