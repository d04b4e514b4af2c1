"""The `faceblur` command: help everywhere, one clear line and the right exit code on every error,
nothing published on failure, and one JSON line in the termination log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from faceblur import cli
from faceblur_contract.enums import DetectorName, MaskShape, ReplaceWith, VideoEncoder
from faceblur_contract.exits import ExitCode
from faceblur_contract.options import DetectorSpec, ProcessOptions, UsageError
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from typer.testing import CliRunner

FACEBLUR = str(Path(sys.executable).parent / "faceblur")
COMMANDS = ["probe", "split", "process", "compose", "cleanup", "blur"]


def run(
    *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FACEBLUR_", "AWS_", "JOB_COMPLETION"))
    }
    environment.update(env or {})
    if log is not None:
        environment["FACEBLUR_TERMINATION_LOG"] = str(log)
    return subprocess.run([FACEBLUR, *args], capture_output=True, text=True, env=environment, timeout=300)


def error_line(result: subprocess.CompletedProcess[str], stage: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"faceblur {stage}: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def termination(log: Path) -> dict[str, object]:
    text = log.read_text()
    assert text.count("\n") == 1
    record: dict[str, object] = json.loads(text)
    return record


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command: str) -> None:
    result = CliRunner().invoke(cli.app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert f"Usage: faceblur {command}" in result.output
    assert "--verbose" in result.output


def test_top_level_help_lists_commands() -> None:
    result = CliRunner().invoke(cli.app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def parsed(*args: str) -> ProcessOptions:
    """The options `faceblur process` gives its work for these arguments (typer's real parser)."""
    command = typer.main.get_command(cli.app).commands["process"]  # type: ignore[attr-defined]
    return cli.processing_options(command.make_context("process", ["--job", "j", *args]).params)


def test_detector_options_map_to_process_options() -> None:
    options = parsed(
        "--detector", "centerface", "--detector", "scrfd", "--model", "scrfd=/models/scrfd.onnx",
        "--thresh", "0.4", "--threshold", "scrfd=0.6", "--scale", "640x360", "--batch-size", "4",
        "--execution-provider", "cpu", "--threads", "2", "--replacewith", "mosaic", "--mask-shape",
        "ellipse", "--boxes", "--mask-scale", "1.5", "--look-back", "3", "--look-ahead", "2",
        "--crf", "20", "--preset", "fast", "--debug", "--merge",
    )  # fmt: skip
    assert options.detectors == (
        DetectorSpec(DetectorName.CENTERFACE, None, 0.4, (640, 360)),
        DetectorSpec(DetectorName.SCRFD, "/models/scrfd.onnx", 0.6, (640, 360)),
    )
    assert (options.batch_size, options.threads, options.method, options.mask_shape, options.merge) == (
        4,
        2,
        ReplaceWith.MOSAIC,  # deface's --replacewith is the alias of --method
        MaskShape.BOX,  # --boxes wins over --mask-shape, as in deface
        True,
    )
    assert (options.look_back, options.look_ahead, options.force) == (3, 2, False)
    assert (options.encoder, parsed("--encoder", "nvenc").encoder) == (VideoEncoder.AUTO, VideoEncoder.NVENC)
    assert cli.parse_indexes("0,2,5-7") == [0, 2, 5, 6, 7]
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        parsed("--scale", "640")
    with pytest.raises(UsageError, match="write NAME="):
        parsed("--detector", "centerface", "--detector", "scrfd", "--model", "/m.onnx")
    with pytest.raises(UsageError, match=r"--threshold '0': expected a number > 0 and <= 1"):
        parsed("--thresh", "0")


def test_probe_json_and_termination_log(videos: VideoLibrary, tmp_path: Path) -> None:
    log = tmp_path / "termination"
    result = run("probe", str(videos.get().path), "--json", log=log)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frame_count"] == 50
    assert termination(log) == {"stage": "probe", "frames": 50, "width": 320, "height": 240}


def test_bad_input_is_one_line_exit_3(videos: VideoLibrary, tmp_path: Path) -> None:
    log = tmp_path / "termination"
    result = run("probe", str(videos.corrupt()), log=log)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "corrupt.mp4" in error_line(result, "probe")
    record = termination(log)
    assert record["reason"] == "InvalidInput"
    assert record["exit_code"] == 3
    assert "corrupt.mp4" in str(record["error"])

    result = run("probe", str(videos.audio_only()))
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "no video stream" in error_line(result, "probe")

    result = run("probe", str(videos.zero_frames()))
    assert result.returncode == ExitCode.INVALID_INPUT
    assert error_line(result, "probe").endswith("zero-frames.mp4 has a video stream but no frames")

    verbose = run("probe", str(videos.corrupt()), "--verbose")
    assert verbose.returncode == ExitCode.INVALID_INPUT
    assert "Traceback" in verbose.stderr


def test_split_success_and_missing_input(videos: VideoLibrary, tmp_path: Path) -> None:
    log = tmp_path / "termination"
    job = tmp_path / "job"
    video = videos.get(gop=10).path
    result = run("split", "--input", str(video), "--job", str(job), "--chunks", "2", log=log)
    assert result.returncode == 0, result.stderr
    assert termination(log) == {
        "stage": "split", "chunks": 2, "frames": 50, "width": 320, "height": 240, "duration_s": 2.0,
        "input_bytes": video.stat().st_size,
        "output_plan": "MP4; audio #1 aac copied",  # no --output: the container is split's to choose
    }  # fmt: skip
    assert (job / "manifest.json").exists()

    missing = run("split", "--input", str(tmp_path / "nope.mp4"), "--job", str(tmp_path / "job2"), log=log)
    assert missing.returncode == ExitCode.STORAGE
    assert "nope.mp4" in error_line(missing, "split")
    assert termination(log)["reason"] == "Storage"
    assert not (tmp_path / "job2").exists()

    both = run("split", "--input", "x.mp4", "--job", str(job), "--chunks", "2", "--chunk-frames", "9")
    assert both.returncode == ExitCode.USAGE
    error_line(both, "split")


def test_s3_missing_object_and_wrong_credentials(
    s3_server: S3Server, videos: VideoLibrary, tmp_path: Path
) -> None:
    s3_server.make_bucket("cli")
    s3_server.client().fput_object("cli", "in.mp4", str(videos.get().path))
    env = s3_server.env()
    missing = run("split", "--input", "s3://cli/missing.mp4", "--job", "s3://cli/jobs/a", env=env)
    assert missing.returncode == ExitCode.STORAGE
    assert "s3://cli/missing.mp4" in error_line(missing, "split")

    wrong = {**env, "FACEBLUR_S3_SECRET_KEY": "wrong-secret"}
    log = tmp_path / "termination"
    refused = run("split", "--input", "s3://cli/in.mp4", "--job", "s3://cli/jobs/b", env=wrong, log=log)
    assert refused.returncode == ExitCode.STORAGE
    assert "rejected the S3 credentials" in error_line(refused, "split")
    assert termination(log)["reason"] == "Storage"

    unreachable = {**env, "FACEBLUR_S3_ATTEMPTS": "1"}
    endpoint_flag = run("probe", "s3://cli/in.mp4", "--s3-endpoint", "http://127.0.0.1:9", env=unreachable)
    assert endpoint_flag.returncode == ExitCode.STORAGE
    assert "unreachable" in error_line(endpoint_flag, "probe")
    assert list(s3_server.client().list_objects("cli", prefix="jobs/", recursive=True)) == []


def test_unwritable_destination_publishes_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    result = run("blur", str(videos.get().path), "-o", str(blocker / "out.mp4"))
    assert result.returncode == ExitCode.STORAGE
    assert "is a file, not a folder" in error_line(result, "blur")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_compose_with_a_missing_chunk_publishes_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert (
        run("split", "--input", str(videos.get(gop=10).path), "--job", str(job), "--chunks", "2").returncode
        == 0
    )
    log = tmp_path / "termination"
    output = tmp_path / "out.mp4"
    result = run("compose", "--job", str(job), "--output", str(output), log=log)
    assert result.returncode == ExitCode.STORAGE
    assert "2 of 2 processed chunks missing" in error_line(result, "compose")
    assert termination(log)["stage"] == "compose"
    assert not output.exists()


def test_process_needs_an_index(tmp_path: Path) -> None:
    result = run("process", "--job", str(tmp_path))
    assert result.returncode == ExitCode.USAGE
    assert "JOB_COMPLETION_INDEX" in error_line(result, "process")


def test_rejected_command_line_still_writes_the_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    result = run("split", "--chunks", "two", log=log)
    assert result.returncode == ExitCode.USAGE
    record = termination(log)
    assert record["stage"] == "split"
    assert record["error"] == "invalid command line (see --help)"
    assert (record["reason"], record["exit_code"]) == ("InvalidInput", 2)


def test_unexpected_errors_are_one_line_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("faceblur.media.probe.probe", broken)
    monkeypatch.setenv("FACEBLUR_TERMINATION_LOG", str(tmp_path / "log"))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    result = CliRunner().invoke(cli.app, ["probe", str(video)])
    assert result.exit_code == ExitCode.INTERNAL
    assert "internal error: RuntimeError: boom" in result.output
    assert "second line" not in result.output
    assert termination(tmp_path / "log")["reason"] == "Internal"


def test_termination_line_fits_kubernetes_limit(tmp_path: Path) -> None:
    from faceblur.cli.termination import encode, termination_path
    from faceblur_contract.records import failure_record

    line = encode(failure_record("process", "x" * 10_000, ExitCode.STORAGE))
    assert len(line.encode()) <= 4000
    assert json.loads(line)["reason"] == "Storage"
    assert termination_path({"FACEBLUR_TERMINATION_LOG": str(tmp_path / "t")}) == tmp_path / "t"


def test_cleanup_deletes_only_the_job_prefix(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for key in ("jobs/a/chunks/000000.mp4", "jobs/a/manifest.json", "jobs/ab/keep.json", "out.mp4"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(b"x")
    log = tmp_path / "termination"
    result = run("cleanup", "--job", str(root / "jobs" / "a"), log=log)
    assert result.returncode == 0, result.stderr
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert left == ["jobs/ab/keep.json", "out.mp4"]
    assert termination(log) == {"stage": "cleanup", "deleted": 2}


def test_cleanup_refuses_a_whole_bucket(tmp_path: Path) -> None:
    log = tmp_path / "termination"
    result = run("cleanup", "--job", "s3://bucket", env={"FACEBLUR_S3_ENDPOINT": "127.0.0.1:1"}, log=log)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "names no prefix" in error_line(result, "cleanup")
    assert termination(log)["reason"] == "InvalidInput"


def test_s3_input_errors_name_the_object_and_say_whether_a_retry_can_help(
    s3_server: S3Server, videos: VideoLibrary, tmp_path: Path
) -> None:
    """What the user uploaded is what the message names, never the pod's downloaded copy."""
    s3_server.make_bucket("cli-msg")
    whole = videos.get().path.read_bytes()
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(whole[: len(whole) // 3])
    s3_server.client().fput_object("cli-msg", "in/trunc.mp4", str(truncated))
    env = s3_server.env()
    log = tmp_path / "termination"

    cut = run(
        "split", "--input", "s3://cli-msg/in/trunc.mp4", "--job", "s3://cli-msg/jobs/t", env=env, log=log
    )
    assert cut.returncode == ExitCode.INVALID_INPUT
    line = error_line(cut, "split")
    assert "s3://cli-msg/in/trunc.mp4" in line
    assert "faceblur-split-" not in line
    assert "/input.mp4" not in line
    assert "upload is complete" in line or "damaged" in line
    assert termination(log)["permanent"] is True

    missing = run(
        "split", "--input", "s3://cli-msg/in/nope.mp4", "--job", "s3://cli-msg/jobs/m", env=env, log=log
    )
    assert missing.returncode == ExitCode.STORAGE
    assert "upload the input there" in error_line(missing, "split")
    record = termination(log)
    assert (record["reason"], record["permanent"]) == ("Storage", True)  # final: fails the job at once

    unreachable = {**env, "FACEBLUR_S3_ATTEMPTS": "1", "FACEBLUR_S3_ENDPOINT": "http://127.0.0.1:9"}
    down = run("split", "--input", "s3://cli-msg/in/trunc.mp4", "--job", "/tmp/x", env=unreachable, log=log)
    assert down.returncode == ExitCode.STORAGE
    assert termination(log)["permanent"] is False  # may work next time: the Job retries it
