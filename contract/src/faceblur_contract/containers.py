"""The output containers faceblur writes, by file extension: one table for the worker, which plans
the output from its name, and the operator, which names a default output."""

from __future__ import annotations

import posixpath

# extension -> FFmpeg's muxer
OUTPUT_EXTENSIONS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".qt": "mov",
    ".mkv": "matroska",
}
DEFAULT_EXTENSION = ".mp4"


def default_output_extension(input_name: str) -> str:
    """The input's own extension where faceblur writes it (so a camera's .mov keeps its PCM audio as it
    is), else .mp4."""
    ext = posixpath.splitext(input_name)[1].lower()
    return ext if ext in OUTPUT_EXTENSIONS else DEFAULT_EXTENSION
