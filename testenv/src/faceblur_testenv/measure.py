"""Measures the tests assert with: how much detail a region keeps, and a video's frames."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


def sharpness(image: Image) -> float:
    """Variance of the Laplacian: high for detailed regions (a face), near zero once blurred."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def decode_bgr(path: Path) -> list[Image]:
    """Every frame of the first video stream, in presentation order, as BGR arrays."""
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="bgr24"), dtype=np.uint8) for f in container.decode(video=0)]
