"""No stray boxes: a box carried from neighbouring frames moves as its face moved, so a face that
walks out of the frame leaves no blur where it was last seen (real face, real background, real
CenterFace and encoding)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from faceblur.job.blur import blur
from faceblur_contract.options import ProcessOptions, VerifyOptions
from faceblur_testenv.facefree import FaceFreeScene, face_free_still
from faceblur_testenv.measure import decode_bgr, detail_kept, sharpness
from faceblur_testenv.videos import Scene, still, still_faces

WIDTH, HEIGHT, FRAMES = 480, 272, 40
FACE = 72  # the face's side in the video, pixels
SPEED = 14  # pixels per frame, to the right
TOP = 90


def _face_patch() -> np.ndarray:
    face = still_faces(Scene.ASTRONAUT)[0]
    image = still(Scene.ASTRONAUT)
    x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
    return np.asarray(cv2.resize(image[y1:y2, x1:x2], (FACE, FACE), interpolation=cv2.INTER_AREA))


def _left(frame: int) -> int:
    return 200 + SPEED * frame


def _make(path: Path) -> list[int]:
    """A face crossing a real background to the right and out of the frame; the frames it is
    wholly out of the frame in."""
    background = np.asarray(cv2.resize(face_free_still(FaceFreeScene.ROCKET), (WIDTH, HEIGHT)))
    patch = _face_patch()
    gone = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "16"}
        for number in range(FRAMES):
            image = background.copy()
            left = _left(number)
            shown = min(FACE, WIDTH - left)
            if shown > 0:
                image[TOP : TOP + FACE, left : left + shown] = patch[:, :shown]
            else:
                gone.append(number)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return gone


@pytest.fixture(scope="module")
def walking_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("stray") / "walking-out.mp4"
    return path, _make(path)


def test_a_face_that_leaves_the_frame_leaves_no_blur_where_it_was(
    walking_out: tuple[Path, list[int]], tmp_path: Path
) -> None:
    video, gone = walking_out
    assert len(gone) >= 10, "the face must be gone for the whole carry window"
    output = tmp_path / "out.mp4"
    options = ProcessOptions(verification=VerifyOptions(enabled=False))  # the main pass alone
    blur(str(video), str(output), options, workers=1, chunks=1, workdir=tmp_path / "job")
    before, after = decode_bgr(video), decode_bgr(output)
    # While it is wholly inside, the face is anonymized (the carried boxes have something to carry).
    inside = [n for n in range(FRAMES) if _left(n) + FACE <= WIDTH]
    for number in inside:
        face = (slice(TOP, TOP + FACE), slice(_left(number), _left(number) + FACE))
        assert sharpness(after[number][face]) < 0.25 * sharpness(before[number][face]), number
    # Once it is gone, its band of the frame is the background as it came in: no blob where it was.
    edge = (slice(TOP - FACE // 2, TOP + FACE + FACE // 2), slice(WIDTH - 2 * FACE, WIDTH))
    for number in gone:
        assert detail_kept(before[number][edge], after[number][edge]) > 0.9, number
