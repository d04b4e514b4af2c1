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
from faceblur_contract.records import ResidualFrame

from faceblur.anonymization.drawing import COLOURS
from faceblur.errors import InvalidInputError
from faceblur.job.manifest import BoxSource
from faceblur.verify.residual import worst

Image = npt.NDArray[np.uint8]

SHEET_FRAMES = 12
THUMB_WIDTH = 320
MARKED_FRAMES = 4  # residual frames added to the sheet (the worst ones)
RESIDUAL_COLOUR = (0, 0, 255)  # BGR red
FIXED_COLOUR = COLOURS[BoxSource.FIXED]  # the debug video's colour for what the fix-up anonymized
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


def mark_residual(thumb: Image, frame: ResidualFrame, scale: float) -> Image:
    """The thumbnail with a frame and the residual boxes (displayed pixels times `scale`) drawn: red,
    or the fix-up's blue where every box of the frame was fixed."""
    marked = thumb.copy()
    for box in frame.boxes:
        corners = [round(v * scale) for v in (box.x1, box.y1, box.x2, box.y2)]
        colour = FIXED_COLOUR if box.fixed else RESIDUAL_COLOUR
        cv2.rectangle(marked, (corners[0], corners[1]), (corners[2], corners[3]), colour, 2)
    height, width = marked.shape[:2]
    cv2.rectangle(marked, (0, 0), (width - 1, height - 1), _frame_colour(frame), 4)
    return marked


def _fixed(frame: ResidualFrame) -> bool:
    return all(box.fixed for box in frame.boxes)


def _frame_colour(frame: ResidualFrame) -> tuple[int, int, int]:
    return FIXED_COLOUR if _fixed(frame) else RESIDUAL_COLOUR


def contact_sheet(
    video: Path, frame_count: int, rotation: int = 0, residual: Sequence[ResidualFrame] = ()
) -> bytes:
    """PNG bytes of the sheet of `video` (frames shown upright). The worst `residual` frames the
    verification found are added, framed in red with their face-like regions boxed and scored (in
    the fix-up's blue, and labelled FIXED, where the fix-up anonymized them)."""
    marked = {f.frame: f for f in worst(residual, MARKED_FRAMES)}
    wanted = set(sample_frames(frame_count)) | set(marked)
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
            thumb = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            if number in marked:
                thumbs.append(mark_residual(thumb, marked[number], scale))
                state = "FIXED" if _fixed(marked[number]) else "RESIDUAL"
                labels.append(f"frame {number} {state} {marked[number].score:.2f}")
            else:
                thumbs.append(thumb)
                labels.append(f"frame {number}")
    if not thumbs:
        raise InvalidInputError(f"{video.name} has no frames for a contact sheet")
    ok, data = cv2.imencode(".png", grid(thumbs, labels))
    if not ok:
        raise InvalidInputError("cannot encode the contact sheet as PNG")
    return data.tobytes()
