#!/usr/bin/env python3
"""Media chores of the kind demo, run inside the faceblur worker image (which has ffmpeg, the faces
of insightface and the project's S3 client), so the user needs nothing but Docker and kind.

    demo_media.py sample OUT.mp4            a few seconds of video with real faces and an audio tone
    demo_media.py put FILE s3://bucket/key  upload (FACEBLUR_S3_* environment, as the workers use)
    demo_media.py get s3://bucket/key FILE  download
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from faceblur.errors import FaceblurError
from faceblur.storage import open_store

SECONDS = 4
SIZE = "640x360"
FPS = 25


def face_image() -> Path:
    """A photo of several people that ships inside the insightface package."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("demo_media: insightface is not installed, so there is no sample face image")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / "t1.jpg"
    if not path.is_file():
        sys.exit(f"demo_media: {path} is missing")
    return path


def make_sample(output: Path) -> None:
    """A slow zoom over the photo (so faces move and change size) with a 440 Hz tone."""
    frames = SECONDS * FPS
    zoom = f"zoompan=z='min(zoom+0.002,1.3)':d={frames}:s={SIZE}:fps={FPS}"
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-loop", "1", "-i", str(face_image()),
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-filter_complex", f"[0:v]scale=1280:-2,{zoom},format=yuv420p[v]",
        "-map", "[v]", "-map", "1:a", "-frames:v", str(frames),
        "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-shortest", str(output),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def put(source: Path, url: str) -> None:
    store, key = open_store(url)
    store.upload(source, key, content_type="video/mp4")


def get(url: str, target: Path) -> None:
    store, key = open_store(url)
    store.download(key, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sample").add_argument("output", type=Path)
    upload = commands.add_parser("put")
    upload.add_argument("source", type=Path)
    upload.add_argument("url")
    download = commands.add_parser("get")
    download.add_argument("url")
    download.add_argument("target", type=Path)
    args = parser.parse_args()
    try:
        if args.command == "sample":
            make_sample(args.output)
        elif args.command == "put":
            put(args.source, args.url)
        else:
            get(args.url, args.target)
    except FaceblurError as error:
        sys.exit(f"demo_media: {error}")


if __name__ == "__main__":
    main()
