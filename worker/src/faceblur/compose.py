"""Compose: the processed chunks, in order, with the input's audio, timing and metadata.

Nothing is published until every chunk is present and has the frame count the manifest
promises, and the assembled file has been checked to hold every frame. The output is
then uploaded in one atomic step, and `result.json` is written after it, so its
presence means the job is finished.
"""

from __future__ import annotations

import logging
import tempfile
from fractions import Fraction
from pathlib import Path, PurePosixPath

from faceblur_contract.indexes import format_indexes
from faceblur_contract.records import VerificationReport

from faceblur.cleanup import remove_intermediates
from faceblur.concat import OutputSpec, Part, concat, container_format, packet_pts
from faceblur.contactsheet import contact_sheet
from faceblur.errors import InvalidInputError, MediaFileError, ObjectNotFoundError, ResidualFacesError
from faceblur.inputs import is_http
from faceblur.jobmanifest import load_manifest, object_location, unfinished_indexes
from faceblur.layout import JobLayout
from faceblur.manifest import ChunkResult, JobResult, Manifest
from faceblur.storage import ObjectStore, S3Settings, open_store, parse_url
from faceblur.verify import describe, merge, report_url

log = logging.getLogger(__name__)

_CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "matroska": "video/x-matroska"}


def compose(
    store: ObjectStore,
    layout: JobLayout,
    output_url: str,
    *,
    debug: bool = False,
    cleanup: bool = False,
    s3_settings: S3Settings | None = None,
    max_residual_frames: int | None = None,
) -> JobResult:
    """Publish the output; refused (ResidualFacesError, nothing published) when the chunks' verification
    found more than `max_residual_frames` frames with a residual face."""
    manifest = load_manifest(store, layout)
    missing = unfinished_indexes(store, layout, manifest, debug=debug)
    if missing:
        what = "processed or debug chunks" if debug else "processed chunks"
        raise ObjectNotFoundError(
            f"{len(missing)} of {len(manifest.chunks)} {what} missing"
            f" (indexes {format_indexes(missing, ', ')}): process them first"
        )
    out_store, out_key = open_store(output_url, s3_settings)
    if not out_key:
        raise InvalidInputError(f"output {output_url} names no file")
    if same_object(output_url, manifest.input):
        raise InvalidInputError(
            f"output {output_url} is the input: choose another output, the input is never changed"
        )
    results = [
        ChunkResult.model_validate_json(store.get_bytes(layout.chunk_result(c.index)))
        for c in manifest.chunks
    ]
    report = _verification(store, layout, manifest, results, output_url, max_residual_frames)
    with tempfile.TemporaryDirectory(prefix="faceblur-compose-") as tmp_name:
        tmp = Path(tmp_name)
        fmt = container_format(out_key)
        output = tmp / f"output{PurePosixPath(out_key).suffix or '.mp4'}"
        _assemble(
            store, layout, manifest, output, fmt, [layout.processed(c.index) for c in manifest.chunks], tmp
        )
        debug_video = sheet = None
        if debug:
            debug_path = tmp / "debug.mp4"
            keys = [layout.debug_chunk(c.index) for c in manifest.chunks]
            _assemble(store, layout, manifest, debug_path, "mp4", keys, tmp, with_audio=False)
            residual = report.residual if report is not None else []
            sheet_png = contact_sheet(debug_path, manifest.frame_count, manifest.video.rotation, residual)
        out_store.upload(output, out_key, _CONTENT_TYPES[fmt])
        log.info("published %s (%d frames)", output_url, manifest.frame_count)
        verification_report = None
        if report is not None:
            verification_report = report_url(output_url)
            report_store, report_key = open_store(verification_report, s3_settings)
            report_store.put_bytes(report_key, report.to_json(), "application/json")
        if debug:
            store.upload(debug_path, layout.debug_video, "video/mp4")
            store.put_bytes(layout.contact_sheet, sheet_png, "image/png")
            debug_video, sheet = (
                object_location(store, layout.debug_video),
                object_location(store, layout.contact_sheet),
            )
    result = JobResult(
        output=output_url,
        frames=manifest.frame_count,
        faces=sum(r.faces for r in results),
        frames_with_faces=sum(r.frames_with_faces for r in results),
        chunks=len(manifest.chunks),
        debug_video=debug_video,
        contact_sheet=sheet,
        verification=report.summary if report is not None else None,
        verification_report=verification_report,
        whole_frames=sum(r.whole_frames for r in results),
    )
    store.put_bytes(layout.result, result.to_json(), "application/json")
    if cleanup:
        remove_intermediates(store, layout)
    return result


def _verification(
    store: ObjectStore,
    layout: JobLayout,
    manifest: Manifest,
    results: list[ChunkResult],
    output_url: str,
    max_residual_frames: int | None,
) -> VerificationReport | None:
    """The chunks' verification reports merged (kept with the intermediates); raises when the output
    must not be published. None when no chunk was verified."""
    verified = [r.index for r in results if r.verification is not None]
    if not verified:
        if max_residual_frames is not None:
            raise ResidualFacesError(
                f"{output_url} not published: a bound on residual faces is set but no chunk was verified"
                " (process with --verify)"
            )
        return None
    keys = [layout.chunk_verification(i) for i in verified]
    parts = [VerificationReport.model_validate_json(store.get_bytes(key)) for key in keys]
    report = merge(
        parts,
        output=output_url,
        frames=manifest.frame_count,
        max_residual_frames=max_residual_frames,
        unverified_chunks=[r.index for r in results if r.verification is None],
    )
    store.put_bytes(layout.verification_report, report.to_json(), "application/json")
    log.info("verification: %s", describe(report.summary))
    if not report.passed:
        raise ResidualFacesError(
            f"{output_url} not published: verification {describe(report.summary)}; at most"
            f" {max_residual_frames} allowed. Report: {object_location(store, layout.verification_report)}"
        )
    if report.unverified_chunks and max_residual_frames is not None:
        raise ResidualFacesError(
            f"{output_url} not published: chunks {format_indexes(report.unverified_chunks, ', ')} were"
            " processed without verification; reprocess them with --verify --force"
        )
    return report


def same_object(a: str, b: str) -> bool:
    """Whether two URLs or paths name the same object (http inputs are never outputs)."""
    if is_http(a) or is_http(b):
        return False
    return parse_url(a) == parse_url(b)


def _assemble(
    store: ObjectStore,
    layout: JobLayout,
    manifest: Manifest,
    output: Path,
    fmt: str,
    keys: list[str],
    tmp: Path,
    *,
    with_audio: bool = True,
) -> None:
    """Download the chunk files of `keys`, concatenate them and check the result."""
    parts = []
    copies: dict[Path, tuple[str, str]] = {}  # what each downloaded file is, for messages
    for chunk, key in zip(manifest.chunks, keys, strict=True):
        path = tmp / f"part-{chunk.index:06d}-{PurePosixPath(key).name}"
        store.download(key, path)
        parts.append(Part(path, chunk.frame_pts(), chunk.frame_count))
        copies[path] = (
            f"chunk {chunk.index} ({object_location(store, key)})",
            f"process it again (faceblur process --index {chunk.index} --force)",
        )
    audio = None
    if with_audio and manifest.video.audio:
        audio = tmp / "audio.mka"
        store.download(layout.audio, audio)
        copies[audio] = (
            f"the input's audio ({object_location(store, layout.audio)})",
            "split the input again into a new job",
        )
    video = manifest.video
    time_base = Fraction(video.time_base)
    spec = OutputSpec(
        path=output,
        format=fmt,
        time_base=time_base,
        end_pts=video.start_pts + round(Fraction(video.duration_s) / time_base),
        rotation=video.rotation,
        tags=video.tags,
    )
    try:
        frames = concat(parts, spec, audio)
    except MediaFileError as exc:  # name the job's object, not its scratch copy
        raise exc.naming(copies) from None
    written, _ = packet_pts(output)
    if frames != manifest.frame_count or len(written) != manifest.frame_count:
        raise InvalidInputError(
            f"assembled {len(written)} frames, expected {manifest.frame_count}: not published"
        )
    for part in parts:
        part.path.unlink()
