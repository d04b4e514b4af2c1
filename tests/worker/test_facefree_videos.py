"""The face-free clips: seeded (equal specs give equal pixels), shaky, tagged with the range they hold."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from faceblur.media.probe import probe_with_frames
from faceblur_testenv.facefree import FaceFreeLibrary, FaceFreeScene, FaceFreeSpec, render_frames
from faceblur_testenv.measure import decode_bgr

pytestmark = pytest.mark.media  # renders and encodes the clips


def test_equal_specs_render_equal_frames_and_seeds_change_the_shake() -> None:
    spec = FaceFreeSpec(scene=FaceFreeScene.ROCKET, frames=6, width=320, height=180)
    first, again = render_frames(spec), render_frames(spec)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = render_frames(FaceFreeSpec(scene=FaceFreeScene.ROCKET, frames=6, width=320, height=180, seed=1))
    assert not np.array_equal(first[3], other[3])
    # the camera moves between consecutive frames (pan plus shake), never a still
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in itertools.pairwise(first))


@pytest.mark.parametrize(
    ("full_range", "pix_fmt", "colour_range"), [(True, "yuvj420p", "pc"), (False, "yuv420p", "tv")]
)
def test_clip_is_tagged_with_its_range_and_decodes_to_the_same_picture(
    tmp_path: Path, full_range: bool, pix_fmt: str, colour_range: str
) -> None:
    spec = FaceFreeSpec(scene=FaceFreeScene.COFFEE, frames=8, width=320, height=180, full_range=full_range)
    path = FaceFreeLibrary(tmp_path).get(spec)
    info, _ = probe_with_frames(str(path))
    assert (info.width, info.height, info.frame_count) == (320, 180, 8)
    assert (info.pix_fmt, info.color_range, info.color_space) == (pix_fmt, colour_range, "bt709")
    rendered, decoded = render_frames(spec), decode_bgr(path)
    # decoded with the tagged range and matrix, the picture is the rendered one (up to x264 at CRF 20)
    for original, back in zip(rendered, decoded, strict=True):
        assert abs(float(original.mean()) - float(back.mean())) < 1.5
