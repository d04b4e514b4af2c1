"""Colour kept exactly through `faceblur blur`: range, matrix, primaries, transfer, and the samples.

Each input goes through the CLI in three chunks cut by re-encoding (the test videos have
one keyframe), with the debug video. The output and the debug video must carry the
input's four colour tags (read back with Debian's ffprobe) and, away from the faces,
the input's luma levels: the same mean and the same spread of 4x4 block means (a
full-range picture squeezed to 16-235 or a limited one stretched to 0-255 moves their 2nd
and 98th percentiles by 10 levels or more; the blocks leave out the pixel-scale noise that
x264 may smooth: on 10-bit input, depending on the encoder's thread count, single-pixel
percentiles moved by up to 4 levels, block means by up to 2.5). The detectors must see the
colours a player shows: BGR read with the input's own matrix and range.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from faceblur.job.manifest import Manifest
from faceblur.media.codec import HdrMetadata, decode_frames, to_bgr
from faceblur_contract.enums import SplitMode
from faceblur_testenv.videos import (
    HDR10_CONTENT_LIGHT,
    HDR10_MASTERING_DISPLAY,
    Colour,
    FaceVideo,
    VideoLibrary,
    VideoSpec,
    prescaled_still,
    render_display_frame,
)

FACEBLUR = str(Path(sys.executable).parent / "faceblur")
TAGS = ("color_range", "color_space", "color_primaries", "color_transfer")
MEAN_TOLERANCE = 1.0  # luma levels (of 255) between input and output means, per frame
SPREAD_TOLERANCE = 5.0  # levels between input and output 2nd (and 98th) percentiles: half a range error
FACE_MARGIN = 0.6  # known face boxes grow by this share of their size on each side before exclusion
BLOCK = 4  # luma is compared as means of BLOCK x BLOCK pixels
HISTOGRAM_BINS = 32  # of 8 levels each
HISTOGRAM_TOLERANCE = 0.1  # share of blocks that may change bin (codec noise at bin edges)

CASES = [
    pytest.param(VideoSpec(colour=Colour.PHONE_FULL, frames=12), id="phone-full-range-bt709"),
    pytest.param(VideoSpec(colour=Colour.SD_LIMITED, width=640, height=480, frames=12), id="sd-bt601"),
    pytest.param(VideoSpec(colour=Colour.BT709_LIMITED, width=1280, height=720, frames=12), id="hd-bt709"),
]

Luma = npt.NDArray[np.float64]


def ffprobe_video(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    stream: dict[str, str] = json.loads(out.stdout)["streams"][0]
    return stream


def luma_planes(path: Path) -> list[Luma]:
    """Every frame's raw Y samples as decoded, no conversion, in 8-bit levels (10-bit divided by 4)."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            plane = frame.planes[0]
            deep = frame.format.components[0].bits > 8
            dtype = np.dtype("<u2") if deep else np.dtype(np.uint8)
            rows = np.frombuffer(bytes(plane), dtype=dtype).reshape(plane.height, -1)[:, : plane.width]
            planes.append(rows.astype(np.float64) / (4.0 if deep else 1.0))
    return planes


def away_from_faces(video: FaceVideo, number: int) -> npt.NDArray[np.bool_]:
    """Pixels of one frame far from every known face (blurred in the output, boxed in the debug video)."""
    keep = np.ones((video.height, video.width), dtype=bool)
    for face in video.faces[number]:
        dx, dy = face.width * FACE_MARGIN, face.height * FACE_MARGIN
        x1, y1 = max(0, int(face.x1 - dx)), max(0, int(face.y1 - dy))
        keep[y1 : int(face.y2 + dy) + 1, x1 : int(face.x2 + dx) + 1] = False
    return keep


def blocks(values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """BLOCK x BLOCK tiles of a plane as one axis each: (rows, columns, BLOCK * BLOCK)."""
    rows, columns = values.shape[0] // BLOCK, values.shape[1] // BLOCK
    tiles = values[: rows * BLOCK, : columns * BLOCK].reshape(rows, BLOCK, columns, BLOCK)
    return tiles.swapaxes(1, 2).reshape(rows, columns, BLOCK * BLOCK)


def luma_differences(video: FaceVideo, output: Path) -> list[tuple[float, float, float]]:
    """Per frame, away from faces: (mean, 2nd, 98th percentile) of output minus input block means."""
    before, after = luma_planes(video.path), luma_planes(output)
    assert len(after) == len(before) == video.frame_count
    differences = []
    for number, (full_a, full_b) in enumerate(zip(before, after, strict=True)):
        keep = blocks(away_from_faces(video, number)).all(axis=2)
        a, b = blocks(full_a).mean(axis=2), blocks(full_b).mean(axis=2)
        assert keep.mean() > 0.3, "too little of the frame is away from faces to compare"
        low_a, high_a = np.percentile(a[keep], [2, 98])
        low_b, high_b = np.percentile(b[keep], [2, 98])
        differences.append((float(b[keep].mean() - a[keep].mean()), low_b - low_a, high_b - high_a))
    return differences


def blur(video: FaceVideo, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FACEBLUR_", "AWS_"))}
    command = [FACEBLUR, "blur", str(video.path), "-o", str(output), "--workers", "1", "--chunks", "3"]
    command += ["--debug", "--keep-intermediates", *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def job_manifest(output: Path) -> Manifest:
    (manifest,) = output.parent.glob(f".{output.name}.faceblur/**/manifest.json")
    return Manifest.model_validate_json(manifest.read_text())


def split_mode(output: Path) -> SplitMode:
    return job_manifest(output).split_mode


@pytest.mark.slow
@pytest.mark.parametrize("spec", CASES)
def test_blur_keeps_colour_tags_and_samples(videos: VideoLibrary, tmp_path: Path, spec: VideoSpec) -> None:
    video = videos.get(spec)
    output = tmp_path / "out.mp4"
    scale = ["--scale", "640x360"] if spec.width > 640 else []  # detection cost only
    blur(video, output, *scale)
    assert split_mode(output) is SplitMode.REENCODE  # the re-encoded chunks are checked too
    debug = tmp_path / "out.debug.mp4"
    source = ffprobe_video(video.path)
    for result in (output, debug):
        probed = ffprobe_video(result)
        assert [probed.get(t) for t in TAGS] == [source.get(t) for t in TAGS], result.name
        assert probed["pix_fmt"] == source["pix_fmt"], result.name
    for result in (output, debug):
        for number, (mean, low, high) in enumerate(luma_differences(video, result)):
            assert abs(mean) <= MEAN_TOLERANCE, f"{result.name} frame {number}: mean luma moved by {mean:.2f}"
            spread = f"{result.name} frame {number}: luma spread moved by {low:.1f} (2%) and {high:.1f} (98%)"
            assert abs(low) <= SPREAD_TOLERANCE, spread
            assert abs(high) <= SPREAD_TOLERANCE, spread


TEN_BIT = [
    pytest.param(VideoSpec(colour=Colour.BT709_10BIT, frames=12), id="bt709"),
    pytest.param(VideoSpec(colour=Colour.PQ_10BIT, frames=12), id="hdr10-pq"),
    pytest.param(VideoSpec(colour=Colour.PQ_10BIT, frames=12, gop=4), id="hdr10-pq-copied-chunks"),
    pytest.param(VideoSpec(colour=Colour.HLG_10BIT, frames=12, codec="hevc"), id="hlg-hevc"),
]


@pytest.mark.slow
@pytest.mark.parametrize("spec", TEN_BIT)
def test_ten_bit_input_stays_ten_bit_with_its_tags_hdr_metadata_and_levels(
    videos: VideoLibrary, tmp_path: Path, spec: VideoSpec
) -> None:
    """10-bit H.264 (High 10) out of 10-bit H.264 or HEVC: the four tags, HDR10 metadata where the
    input has it (on every keyframe, so on every chunk), the luma levels and histogram away from
    faces, and faces blurred in the 10-bit samples themselves."""
    video = videos.get(spec)
    output = tmp_path / "out.mp4"
    result = blur(video, output, "-v")
    assert split_mode(output) is (SplitMode.COPY if spec.gop else SplitMode.REENCODE)  # both carry HDR10
    plan = job_manifest(output).output
    assert plan is not None
    assert plan.video == "yuv420p10le"  # decided at split
    assert "video H.264 10-bit 4:2:0 (High 10)" in plan.summary()
    assert "encoded as H.264 yuv420p10le (High 10: the input's bit depth)" in result.stderr
    source, probed = ffprobe_video(video.path), ffprobe_video(output)
    assert source["pix_fmt"] == probed["pix_fmt"] == "yuv420p10le"
    assert probed["profile"] == "High 10"
    assert [probed.get(t) for t in TAGS] == [source.get(t) for t in TAGS]
    hdr = (
        HdrMetadata(HDR10_MASTERING_DISPLAY, HDR10_CONTENT_LIGHT) if spec.colour is Colour.PQ_10BIT else None
    )
    assert set(keyframe_hdr(output)) == {hdr}
    for number, (mean, low, high) in enumerate(luma_differences(video, output)):
        assert abs(mean) <= MEAN_TOLERANCE, f"frame {number}: mean luma moved by {mean:.2f}"
        assert abs(low) <= SPREAD_TOLERANCE, f"frame {number}: 2nd percentile moved by {low:.1f}"
        assert abs(high) <= SPREAD_TOLERANCE, f"frame {number}: 98th percentile moved by {high:.1f}"
    for number, distance in enumerate(histogram_distances(video, output)):
        assert distance <= HISTOGRAM_TOLERANCE, f"frame {number}: luma histogram moved by {distance:.3f}"
    for number, (before, after) in enumerate(zip(luma_planes(video.path), luma_planes(output), strict=True)):
        for face in video.faces[number]:
            x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
            sharp = [cv2.Laplacian(p[y1:y2, x1:x2], cv2.CV_64F).var() for p in (before, after)]
            assert sharp[1] < 0.25 * sharp[0], f"frame {number}: the face is left sharp in the 10-bit output"


def keyframe_hdr(path: Path) -> list[HdrMetadata | None]:
    """The HDR10 metadata each keyframe of the file carries."""
    with av.open(str(path)) as container:
        return [HdrMetadata.of(frame) for frame in container.decode(video=0) if frame.key_frame]


def histogram_distances(video: FaceVideo, output: Path) -> list[float]:
    """Per frame, away from faces: the total variation distance of input and output luma histograms
    (block means in 8-bit levels, HISTOGRAM_BINS bins): 0 for the same, 1 for no overlap."""
    distances = []
    for number, (a, b) in enumerate(zip(luma_planes(video.path), luma_planes(output), strict=True)):
        keep = blocks(away_from_faces(video, number)).all(axis=2)
        counts = [
            np.histogram(blocks(p).mean(axis=2)[keep], bins=HISTOGRAM_BINS, range=(0, 256))[0] / keep.sum()
            for p in (a, b)
        ]
        distances.append(float(np.abs(counts[0] - counts[1]).sum() / 2))
    return distances


@pytest.mark.parametrize(
    ("spec", "matrix", "full"),
    [
        (VideoSpec(colour=Colour.PHONE_FULL, frames=2), (0.2126, 0.0722), True),
        (VideoSpec(colour=Colour.SD_LIMITED, width=640, height=480, frames=2), (0.299, 0.114), False),
        (VideoSpec(colour=Colour.BT709_LIMITED, width=1280, height=720, frames=2), (0.2126, 0.0722), False),
    ],
    ids=["phone-full-range-bt709", "sd-bt601", "hd-bt709"],
)
def test_detectors_see_the_colours_a_player_shows(
    videos: VideoLibrary, spec: VideoSpec, matrix: tuple[float, float], full: bool
) -> None:
    """BGR for detection equals the input's own formula applied to its samples, at full size and shrunk."""
    video = videos.get(spec)
    frame = next(decode_frames(video.path))
    expected = bgr_by_formula(luma_planes(video.path)[0], chroma_planes(video.path), matrix, full)
    # swscale's fast path rounds down by up to 1.5 levels; a wrong range or matrix is off by 8 or more
    seen = to_bgr(frame).astype(np.float64)
    assert np.abs(seen - expected).mean() < 2.0
    assert np.abs(seen.mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max() < 2.0
    shrunk = to_bgr(frame, (spec.width // 4, spec.height // 4)).astype(np.float64)
    assert np.abs(shrunk.mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max() < 2.0
    # and the picture the camera saw, before encoding, within the codec's loss
    still, factor = prescaled_still(spec)
    original = render_display_frame(spec, 0, still, factor).astype(np.float64)
    assert np.abs(seen.mean(axis=(0, 1)) - original.mean(axis=(0, 1))).max() < 3.0


def chroma_planes(path: Path) -> tuple[Luma, Luma]:
    """The first frame's Cb and Cr samples, upsampled to full size by repetition."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        planes = []
        for plane in frame.planes[1:3]:
            rows = np.frombuffer(bytes(plane), dtype=np.uint8).reshape(plane.height, -1)[:, : plane.width]
            planes.append(rows.astype(np.float64).repeat(2, axis=0).repeat(2, axis=1))
    return planes[0], planes[1]


def bgr_by_formula(y: Luma, chroma: tuple[Luma, Luma], matrix: tuple[float, float], full: bool) -> Luma:
    """Y'CbCr to B'G'R' with the standard equations (ITU-R BT.601/709) for this matrix and range."""
    kr, kb = matrix
    cb, cr = chroma
    if full:
        luma, pb, pr = y / 255, (cb - 128) / 255, (cr - 128) / 255
    else:
        luma, pb, pr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    red = luma + 2 * (1 - kr) * pr
    blue = luma + 2 * (1 - kb) * pb
    green = (luma - kr * red - kb * blue) / (1 - kr - kb)
    return np.clip(np.stack([blue, green, red], axis=-1) * 255, 0, 255)
