"""Measures the tests assert with: how much detail a region keeps, and a video's frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from faceblur_testenv.videos import FaceVideo

Image = npt.NDArray[np.uint8]


def sharpness(image: Image) -> float:
    """Variance of the Laplacian: high for detailed regions (a face), near zero once blurred."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def detail_kept(original: Image, output: Image) -> float:
    """How much of the original's fine detail is still in place: the correlation of both Laplacians, 1 for
    an unchanged region, near 0 once blurred or pixelated. Sharpness alone cannot judge a mosaic: its block
    edges are sharp (the Laplacian's variance of a pixelated face is often above the face's own)."""
    before, after = (
        cv2.Laplacian(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY), cv2.CV_64F).ravel() for i in (original, output)
    )
    if before.std() == 0 or after.std() == 0:
        return 0.0
    return float(np.corrcoef(before, after)[0, 1])


def decode_bgr(path: Path) -> list[Image]:
    """Every frame of the first video stream, in presentation order, as BGR arrays."""
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="bgr24"), dtype=np.uint8) for f in container.decode(video=0)]


def frames_with_a_sharp_face(video: FaceVideo, output: Path, max_ratio: float) -> list[int]:
    """Frames of `output` where a known face of `video` kept more than max_ratio of its sharpness."""
    return _frames_where(video, output, lambda face, out: sharpness(out) >= max_ratio * sharpness(face))


def frames_with_a_recognisable_face(video: FaceVideo, output: Path, max_kept: float) -> list[int]:
    """Frames of `output` where a known face of `video` kept more than max_kept of its detail in place
    (detail_kept): the check for any anonymization method, mosaic included."""
    return _frames_where(video, output, lambda before, after: detail_kept(before, after) > max_kept)


def _frames_where(video: FaceVideo, output: Path, kept: Callable[[Image, Image], bool]) -> list[int]:
    """Frames of `output` where `kept(input face region, output face region)` holds for a known face."""
    before, after = decode_bgr(video.path), decode_bgr(output)
    if len(after) != len(before):
        raise AssertionError(f"{output.name} has {len(after)} frames, the input {len(before)}")
    found = []
    for number, (original, anonymized) in enumerate(zip(before, after, strict=True)):
        for face in video.faces[number]:
            x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
            region = (slice(y1, y2), slice(x1, x2))
            if kept(original[region], anonymized[region]):
                found.append(number)
                break
    return found
