"""Which colour matrix and range a frame's samples use, in the terms swscale's conversions take.

A frame's tags (FFmpeg's AVColorSpace and AVColorRange values, as decoders set them)
say how its Y'CbCr samples map to RGB. Every conversion faceblur makes (to BGR for the
detectors and the debug drawing, back to YUV, 10-bit to 8-bit) names both ends
explicitly from those tags, so a full-range frame is never read with the limited-range
formula, BT.709 is never read as BT.601, and the result does not depend on what a PyAV
release does by default (before 17.0, `reformat` ignored a frame's range and matrix).
"""

from __future__ import annotations

from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace

# AVColorSpace value -> swscale matrix. Untagged (2) and unknown matrices get swscale's
# default, BT.601, which is also what FFmpeg's own conversions assume for them.
_MATRICES = {
    1: Colorspace.ITU709,  # bt709
    4: Colorspace.FCC,  # fcc
    5: Colorspace.ITU601,  # bt470bg
    6: Colorspace.SMPTE170M,  # smpte170m (the same matrix as bt470bg)
    7: Colorspace.SMPTE240M,  # smpte240m
    9: Colorspace.BT2020,  # bt2020nc
    10: Colorspace.BT2020,  # bt2020c (same coefficients; constant luminance is not modelled)
}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
# swscale threads per conversion: 1 runs it in the calling thread, which the worker's thread plan
# counts; PyAV's default (0) starts a pool for every frame's converter, beside the plan's threads.
SWSCALE_THREADS = 1


def matrix(colorspace: int) -> Colorspace:
    """The swscale matrix for a frame or stream tagged with this AVColorSpace value."""
    return _MATRICES.get(int(colorspace), Colorspace.ITU601)


def sample_range(color_range: int, pix_fmt: str) -> ColorRange:
    """Full (JPEG) or limited (MPEG) range; the deprecated yuvj formats are full by definition."""
    if int(color_range) == _FULL_RANGE or pix_fmt.startswith("yuvj"):
        return ColorRange.JPEG
    return ColorRange.MPEG


def range_tag(color_range: int, pix_fmt: str) -> int:
    """The range to tag an encode with: the stream's own, or full for a yuvj format without one.

    An untagged stream stays untagged; only a yuvj stream, whose samples are full range
    whatever it says, would otherwise be re-encoded as yuv420p and read as limited.
    """
    if int(color_range) == 0 and pix_fmt.startswith("yuvj"):
        return _FULL_RANGE
    return int(color_range)


def bit_depth(pix_fmt: str) -> int:
    """Bits per luma sample of a pixel format (8 for yuv420p, 10 for yuv420p10le)."""
    return int(VideoFormat(pix_fmt).components[0].bits)


def same_colour(frame: VideoFrame, pix_fmt: str) -> VideoFrame:
    """The frame in another pixel format (8-bit, 4:2:0) with the same samples' range and matrix.

    Its tags and timestamp are the source's (PyAV would retag bt470bg as smpte170m);
    yuvj420p to yuv420p only renames the format: swscale copies the samples.
    """
    space = matrix(frame.colorspace)
    levels = sample_range(frame.color_range, frame.format.name)
    converted = frame.reformat(
        format=pix_fmt,
        src_colorspace=space,
        dst_colorspace=space,
        src_color_range=levels,
        dst_color_range=levels,
        threads=SWSCALE_THREADS,
    )
    converted.pts = frame.pts
    if frame.time_base is not None:  # some decoders (VP9) leave it unset
        converted.time_base = frame.time_base
    converted.colorspace, converted.color_range = frame.colorspace, levels
    converted.color_primaries, converted.color_trc = frame.color_primaries, frame.color_trc
    return converted
