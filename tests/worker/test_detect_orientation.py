"""Rotated videos: detect on upright frames, map boxes back to the stored frame."""

from __future__ import annotations

import numpy as np
import pytest
from faceblur.media.orientation import boxes_to_stored, normalize_rotation, to_display


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_box_on_display_maps_back_onto_the_same_pixels(rotation: int) -> None:
    stored = np.zeros((60, 100, 3), np.uint8)
    stored[10:20, 30:50] = 255  # a marked block: rows 10..19, columns 30..49
    shown = to_display(stored, rotation)
    ys, xs = np.nonzero(shown[:, :, 0])
    display_box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9]], np.float32)
    mapped = boxes_to_stored(display_box, rotation, stored_width=100, stored_height=60)
    np.testing.assert_array_equal(mapped, np.array([[30, 10, 50, 20, 0.9]], np.float32))


def test_display_turns_counter_clockwise() -> None:
    stored = np.zeros((2, 3), np.uint8)
    stored[0, 2] = 1  # top right
    assert to_display(stored, 90)[0, 0] == 1  # a quarter turn left puts it top left
    assert to_display(stored, 270)[2, 1] == 1


def test_rotation_must_be_quarter_turns() -> None:
    assert normalize_rotation(-90) == 270
    with pytest.raises(ValueError, match="multiple of 90"):
        normalize_rotation(45)
