"""Face-free test videos: real photos without people, filmed by a shaky handheld camera.

Real footage without anyone in it is where a face detector's false positives show:
textures, objects and a cat's face that a detector may take for a human face. These
clips pan and zoom over photos that ship inside scikit-image's wheel (nothing is
downloaded) with a seeded camera shake (small jitter, sway and roll on top of the
motion), so equal specs give the same pixels. They come full range like a phone's
recording (`yuvj420p`, `color_range=pc`) or limited range (`yuv420p`, `tv`), BT.709.
No frame holds a human face, so any blur in the output is a false positive.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from faceblur_testenv.videos import Image

_FFMPEG = "ffmpeg"


class FaceFreeScene(StrEnum):
    COFFEE = "coffee"  # a cup of coffee on a table, 600x400
    ROCKET = "rocket"  # a rocket on its launch pad, 640x427
    CHELSEA = "chelsea"  # a cat: a face-like texture, not a human face, 451x300


@dataclass(frozen=True)
class FaceFreeSpec:
    """Everything that defines a face-free clip; equal specs give the same file."""

    scene: FaceFreeScene = FaceFreeScene.COFFEE
    width: int = 848
    height: int = 480
    fps: int = 25
    frames: int = 250
    full_range: bool = True  # yuvj420p / pc, as phones record; False: yuv420p / tv
    seed: int = 0
    crf: int = 20

    def key(self) -> str:
        data = asdict(self) | {"scene": self.scene.value}
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
        return f"facefree-{self.scene.value}-{digest}"


def face_free_still(scene: FaceFreeScene) -> Image:
    """The scene's photo as BGR, from the images scikit-image ships in its wheel."""
    from skimage import data

    rgb = np.asarray(getattr(data, scene.value)(), dtype=np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)


def camera_matrices(spec: FaceFreeSpec, still_width: int, still_height: int) -> list[np.ndarray]:
    """Per frame, the 2x3 affine map from still to frame pixels: a slow zoom in and a pan
    across the photo, plus handheld shake (seeded sway, jitter and roll).

    The zoom always leaves margin around the view so the shake rarely reaches the
    photo's border; where it does, the border is mirrored rather than black."""
    rng = np.random.default_rng(spec.seed)
    cover = max(spec.width / still_width, spec.height / still_height)  # smallest zoom filling the frame
    phases = rng.uniform(0, 2 * math.pi, size=6)
    jitter = rng.normal(0.0, 1.0, size=(spec.frames, 3))
    matrices = []
    for n in range(spec.frames):
        u = n / max(spec.frames - 1, 1)
        t = n / spec.fps
        zoom = cover * (1.12 + 0.18 * u)
        view_w, view_h = spec.width / zoom, spec.height / zoom
        free_x, free_y = still_width - view_w, still_height - view_h
        centre_x = view_w / 2 + free_x * (0.15 + 0.7 * u)
        centre_y = view_h / 2 + free_y * (0.5 + 0.3 * math.sin(2 * math.pi * u))
        # shake in frame pixels: a 1-2 Hz sway of a few pixels, frame-to-frame jitter, a slight roll
        sway_x = 6 * math.sin(2 * math.pi * 1.3 * t + phases[0]) + 3 * math.sin(
            2 * math.pi * 3.1 * t + phases[1]
        )
        sway_y = 5 * math.sin(2 * math.pi * 1.7 * t + phases[2]) + 2 * math.sin(
            2 * math.pi * 4.3 * t + phases[3]
        )
        roll = 0.6 * math.sin(2 * math.pi * 0.9 * t + phases[4]) + 0.15 * jitter[n, 2]
        matrix = cv2.getRotationMatrix2D((centre_x, centre_y), roll, zoom)
        matrix[0, 2] += spec.width / 2 - centre_x + sway_x + 1.5 * jitter[n, 0]
        matrix[1, 2] += spec.height / 2 - centre_y + sway_y + 1.5 * jitter[n, 1]
        matrices.append(matrix)
    return matrices


def render_frames(spec: FaceFreeSpec) -> list[Image]:
    source = face_free_still(spec.scene)
    height, width = source.shape[:2]
    return [
        np.asarray(
            cv2.warpAffine(
                source,
                matrix,
                (spec.width, spec.height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            ),
            dtype=np.uint8,
        )
        for matrix in camera_matrices(spec, width, height)
    ]


def make_face_free(spec: FaceFreeSpec, path: Path) -> Path:
    """Encode the clip with ffmpeg (BGR frames piped raw, converted with BT.709 in the tagged range)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.mp4")
    process = subprocess.Popen(_ffmpeg_command(spec, tmp), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for frame in render_frames(spec):
            process.stdin.write(frame.tobytes())
    finally:
        process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"ffmpeg failed ({code}) making {path.name}: {stderr.strip()[-500:]}")
    os.replace(tmp, path)
    return path


def _ffmpeg_command(spec: FaceFreeSpec, out: Path) -> list[str]:
    value_range = "full" if spec.full_range else "limited"
    command = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{spec.width}x{spec.height}",
        "-r",
        str(spec.fps),
    ]
    # accurate rounding and full chroma: swscale's fast path leaves limited range 1.5-2 levels dark
    scale = f"scale=out_color_matrix=bt709:out_range={value_range}:flags=accurate_rnd+full_chroma_int"
    command += ["-i", "-", "-vf", scale]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(spec.crf)]
    command += [
        "-pix_fmt",
        "yuvj420p" if spec.full_range else "yuv420p",
        # one thread: x264 on two made different frames of one spec (1 encode in 3), so a clip's false
        # blur changed from run to run; one is as fast at this size
        "-threads",
        "1",
        "-x264-params",
        "log=-1",
    ]
    command += ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    command += ["-color_range", "pc" if spec.full_range else "tv"]
    command += ["-metadata", "title=faceblur face-free test video", "-f", "mp4", str(out)]
    return command


class FaceFreeLibrary:
    """Makes each face-free spec once and keeps it in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, spec: FaceFreeSpec | None = None, /, **changes: object) -> Path:
        """`get(FaceFreeSpec(...))` or `get(scene=FaceFreeScene.ROCKET, frames=30)`."""
        if spec is None:
            spec = FaceFreeSpec(**changes)  # type: ignore[arg-type]
        path = self.root / f"{spec.key()}.mp4"
        return path if path.exists() else make_face_free(spec, path)
