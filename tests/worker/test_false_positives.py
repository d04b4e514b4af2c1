"""Face-free real footage comes out untouched (issue 10, item 1).

The clip pans with a shaky camera over scikit-image's cat photo, which CenterFace at the
default threshold takes for a face in a dozen of its 40 frames (scores 0.21-0.30, a box
around the whole head). Before hysteresis each of those was blurred and carried for 15
frames, so most of the clip lost its picture; now they are rejected: not blurred, drawn
in the debug video in the rejected colour.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import BoxSource, ChunkDetections
from faceblur.job.split import split
from faceblur.process.chunk import process_chunk
from faceblur.storage import LocalStore
from faceblur_contract.options import ProcessOptions
from faceblur_testenv.facefree import FaceFreeLibrary, FaceFreeScene, FaceFreeSpec
from faceblur_testenv.measure import decode_bgr
from test_process import drawn_colour, outline_band

FACEBLUR = str(Path(sys.executable).parent / "faceblur")
CAT = FaceFreeSpec(scene=FaceFreeScene.CHELSEA, frames=40)  # full range, 848x480, like a phone


@pytest.fixture(scope="module")
def cat_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(FaceFreeLibrary(tmp_path_factory.mktemp("facefree")).get(CAT))


def test_face_free_clip_comes_out_unblurred(cat_clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "cat.blurred.mp4"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FACEBLUR_", "AWS_"))}
    command = [FACEBLUR, "blur", str(cat_clip), "-o", str(output), "--workers", "1", "--chunks", "2"]
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert completed.returncode == 0, completed.stderr
    before, after = decode_bgr(cat_clip), decode_bgr(output)
    assert len(after) == len(before) == CAT.frames
    # a re-encode keeps > 40 dB here; a blurred cat's head (most of the frame) drops a frame below 30
    worst = min(cv2.PSNR(original, processed) for original, processed in zip(before, after, strict=True))
    assert worst > 35, f"a frame was changed beyond re-encoding: {worst:.1f} dB"


def test_rejected_detections_are_kept_and_drawn_in_their_colour(cat_clip: Path, tmp_path: Path) -> None:
    store, layout = LocalStore(tmp_path), JobLayout("job")
    split(str(cat_clip), store, layout, chunks=1)
    result = process_chunk(store, layout, 0, ProcessOptions(batch_size=4, debug=True))
    detections = ChunkDetections.model_validate_json(store.get_bytes(layout.detections(0)))
    assert detections.frames == {}
    assert result.frames_with_faces == 0
    assert len(detections.rejected) >= 5, "the detector no longer fires on the cat: the test proves nothing"
    assert result.detected_faces == sum(len(boxes) for boxes in detections.rejected.values())
    processed = decode_bgr(tmp_path / layout.processed(0))
    debug = decode_bgr(tmp_path / layout.debug_chunk(0))
    for frame, boxes in detections.rejected.items():
        assert [b.source for b in boxes] == [BoxSource.REJECTED] * len(boxes)
        for box in boxes:
            band = outline_band(debug[frame].shape, box)
            assert drawn_colour(processed[frame], debug[frame], band) is BoxSource.REJECTED
