"""The H.264 encoder's choice (`--encoder auto|x264|nvenc`): NVENC where the GPU has it, x264 else,
and never x264 in place of an NVENC asked for by name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from detect_support import split_job
from faceblur.errors import GpuUnavailableError, InvalidInputError
from faceblur.job.compose import compose
from faceblur.media.codec import NVENC, X264, choose_encoder, nvenc_refusal
from faceblur.process.chunk import process_chunk
from faceblur_contract.enums import VideoEncoder
from faceblur_contract.exits import ExitCode
from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import ChunkResult
from faceblur_testenv.videos import VideoLibrary, VideoSpec

OPTIONS = ProcessOptions(batch_size=4)
AUTO, NV, X = VideoEncoder.AUTO, VideoEncoder.NVENC, VideoEncoder.X264
NO_NVENC = "h264_nvenc does not open here (no GPU)"


def opens() -> str | None:
    return None


def refuses() -> str | None:
    return NO_NVENC


def never_asked() -> str | None:
    raise AssertionError("NVENC was probed where the decision needs no probe")


@pytest.mark.parametrize(
    ("requested", "pix_fmt", "hdr", "on_gpu", "probe", "chosen", "why"),
    [
        (AUTO, "yuv420p", False, True, opens, NVENC, "opens"),
        (AUTO, "yuv420p", False, True, refuses, X264, NO_NVENC),  # H100, H200: no NVENC
        (AUTO, "yuv420p", False, False, never_asked, X264, "inference runs on the CPU"),
        (AUTO, "yuv420p10le", False, True, never_asked, X264, "yuv420p10le, which NVENC"),
        (AUTO, "yuv444p", False, True, never_asked, X264, "yuv444p, which NVENC"),
        (AUTO, "yuv420p", True, True, never_asked, X264, "HDR10 metadata"),
        (X, "yuv420p", False, True, never_asked, X264, "x264 asked for"),
        (NV, "yuv420p", False, False, opens, NVENC, "opens"),  # asked for: the runtime does not matter
    ],
)
def test_choice(
    requested: VideoEncoder,
    pix_fmt: str,
    hdr: bool,
    on_gpu: bool,
    probe: Callable[[], str | None],
    chosen: str,
    why: str,
) -> None:
    choice = choose_encoder(requested, pix_fmt, hdr, on_gpu, probe)
    assert choice.name == chosen
    assert why in choice.why


@pytest.mark.parametrize(
    ("pix_fmt", "hdr", "probe", "why"),
    [
        ("yuv420p", False, refuses, NO_NVENC),
        ("yuv420p10le", False, never_asked, "yuv420p10le, which NVENC's H.264 does not code"),
        ("yuv444p", False, never_asked, "yuv444p"),
        ("yuv420p", True, never_asked, "HDR10"),
    ],
)
def test_nvenc_asked_for_fails_with_the_reason_never_x264(
    pix_fmt: str, hdr: bool, probe: Callable[[], str | None], why: str
) -> None:
    with pytest.raises(GpuUnavailableError, match="encoder nvenc") as raised:
        choose_encoder(NV, pix_fmt, hdr, True, probe)
    assert why in str(raised.value)
    assert raised.value.exit_code is ExitCode.GPU_UNAVAILABLE  # permanent: no retry can help


needs_no_nvenc = pytest.mark.skipif(nvenc_refusal() is None, reason="this machine's NVENC opens")


@needs_no_nvenc
def test_auto_encodes_with_x264_here_and_says_why(
    videos: VideoLibrary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, layout, _manifest = split_job(videos.get(VideoSpec(frames=10)).path, tmp_path, chunks=1)
    with caplog.at_level(logging.INFO, logger="faceblur.process.run"):
        result = process_chunk(store, layout, 0, OPTIONS)
    assert result.encoder == X264
    assert str(result.ran_on).endswith(", libx264")
    stored = ChunkResult.model_validate_json(store.get_bytes(layout.chunk_result(0)))
    assert stored.encoder == X264
    assert "chunk 0 is encoded with libx264 (NVENC not" in caplog.text  # the reason it was not used


@needs_no_nvenc
def test_nvenc_asked_for_here_fails_loudly_and_publishes_nothing(
    videos: VideoLibrary, tmp_path: Path
) -> None:
    store, layout, _manifest = split_job(videos.get(VideoSpec(frames=10)).path, tmp_path, chunks=1)
    with pytest.raises(GpuUnavailableError, match="h264_nvenc does not open here"):
        process_chunk(store, layout, 0, replace(OPTIONS, encoder=NV))
    assert not list(store.list(layout.key("processed")))
    assert not list(store.list(layout.key("results")))


def test_chunks_of_different_encoders_are_not_joined(videos: VideoLibrary, tmp_path: Path) -> None:
    """Pods on GPUs with and without NVENC under `auto`: the output would carry one encoder's
    parameter sets for the other's frames, so compose refuses and says what to set."""
    store, layout, manifest = split_job(videos.get(VideoSpec(frames=20)).path, tmp_path / "store", chunks=2)
    for chunk in manifest.chunks:
        process_chunk(store, layout, chunk.index, OPTIONS)
    key = layout.chunk_result(1)
    other = ChunkResult.model_validate_json(store.get_bytes(key)).model_copy(update={"encoder": NVENC})
    store.put_bytes(key, other.to_json(), "application/json")
    output = tmp_path / "blurred.mp4"
    with pytest.raises(
        InvalidInputError, match=r"libx264: indexes 0; h264_nvenc: indexes 1.*encoding.encoder"
    ):
        compose(store, layout, str(output))
    assert not output.exists()
    assert not store.exists(layout.result)
