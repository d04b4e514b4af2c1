"""Fixtures of the worker tests: one library of real face videos per session."""

from __future__ import annotations

import pytest
from faceblur_testenv.videos import VideoLibrary


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> VideoLibrary:
    """`videos.get(vfr=True, gop=10)` makes (once per session) a real face video and its known boxes."""
    return VideoLibrary(tmp_path_factory.mktemp("videos"))
