"""Measures the tests assert with: how much detail a region keeps, and a video's frames."""

from __future__ import annotations

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


def decode_bgr(path: Path) -> list[Image]:
    """Every frame of the first video stream, in presentation order, as BGR arrays."""
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="bgr24"), dtype=np.uint8) for f in container.decode(video=0)]


def frames_with_a_sharp_face(video: FaceVideo, output: Path, max_ratio: float) -> list[int]:
    """Frames of `output` where a known face of `video` kept more than max_ratio of its sharpness."""
    before, after = decode_bgr(video.path), decode_bgr(output)
    if len(after) != len(before):
        raise AssertionError(f"{output.name} has {len(after)} frames, the input {len(before)}")
    sharp = []
    for number, (original, blurred) in enumerate(zip(before, after, strict=True)):
        for face in video.faces[number]:
            x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
            region = (slice(y1, y2), slice(x1, x2))
            if sharpness(blurred[region]) >= max_ratio * sharpness(original[region]):
                sharp.append(number)
                break
    return sharp
