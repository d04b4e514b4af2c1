"""A contact sheet: one PNG with a grid of frames sampled evenly from a video, labelled.

It lets a person judge a job's quality at a glance (are the boxes on the faces?) without
scrubbing through the debug video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from faceblur.errors import InvalidInputError

Image = npt.NDArray[np.uint8]

SHEET_FRAMES = 12
THUMB_WIDTH = 320
_TO_UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def sample_frames(frame_count: int, wanted: int = SHEET_FRAMES) -> list[int]:
    """Evenly spread frame numbers, first and last included."""
    if frame_count <= wanted:
        return list(range(frame_count))
    return sorted({round(i * (frame_count - 1) / (wanted - 1)) for i in range(wanted)})


def grid(thumbs: Sequence[Image], labels: Sequence[str], columns: int = 4) -> Image:
    """Thumbnails (all the same size) in rows of `columns`, each with its label drawn in."""
    height, width = thumbs[0].shape[:2]
    rows = math.ceil(len(thumbs) / columns)
    sheet = np.full((rows * height, columns * width, 3), 32, dtype=np.uint8)
    for i, (thumb, label) in enumerate(zip(thumbs, labels, strict=True)):
        y, x = (i // columns) * height, (i % columns) * width
        tile = thumb.copy()
        cv2.putText(tile, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        sheet[y : y + height, x : x + width] = tile
    return sheet


def contact_sheet(video: Path, frame_count: int, rotation: int = 0) -> bytes:
    """PNG bytes of the sheet of `video` (frames shown upright)."""
    wanted = set(sample_frames(frame_count))
    thumbs: list[Image] = []
    labels: list[str] = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for number, frame in enumerate(container.decode(stream)):
            if number not in wanted:
                continue
            image = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
            if rotation in _TO_UPRIGHT:
                image = np.asarray(cv2.rotate(image, _TO_UPRIGHT[rotation]), dtype=np.uint8)
            scale = THUMB_WIDTH / image.shape[1]
            size = (THUMB_WIDTH, max(1, round(image.shape[0] * scale)))
            thumbs.append(np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8))
            labels.append(f"frame {number}")
    if not thumbs:
        raise InvalidInputError(f"{video.name} has no frames for a contact sheet")
    ok, data = cv2.imencode(".png", grid(thumbs, labels))
    if not ok:
        raise InvalidInputError("cannot encode the contact sheet as PNG")
    return data.tobytes()
