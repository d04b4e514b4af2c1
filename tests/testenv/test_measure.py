"""The anonymization measures on a real face (the astronaut still): what they call kept and what gone."""

from __future__ import annotations

import cv2
import numpy as np
from faceblur_testenv.measure import Image, detail_kept, sharpness
from faceblur_testenv.videos import Scene, still, still_faces


def face_region() -> Image:
    (face,) = still_faces(Scene.ASTRONAUT)
    x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
    return np.ascontiguousarray(still(Scene.ASTRONAUT)[y1:y2, x1:x2])


def mosaic(region: Image, blocks: int = 8) -> Image:
    height, width = region.shape[:2]
    small = cv2.resize(region, (blocks, blocks), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)


def test_an_unchanged_face_keeps_all_its_detail() -> None:
    face = face_region()
    assert detail_kept(face, face.copy()) > 0.999


def test_blur_and_mosaic_keep_little_detail_though_a_mosaic_stays_sharp() -> None:
    face = face_region()
    pixelated = mosaic(face)
    assert detail_kept(face, cv2.GaussianBlur(face, (0, 0), 6)) < 0.15
    assert detail_kept(face, pixelated) < 0.15
    assert sharpness(pixelated) > 0.25 * sharpness(face)  # why sharpness cannot judge a mosaic


def test_a_half_covered_face_keeps_about_half() -> None:
    face = face_region()
    half = face.copy()
    half[: face.shape[0] // 2] = mosaic(face)[: face.shape[0] // 2]
    assert 0.3 < detail_kept(face, half) < 0.8
