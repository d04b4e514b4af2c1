"""Compose: the processed chunks, in order, with the input's audio, timing and metadata.

Nothing is published until every chunk is present and has the frame count the manifest
promises, and the assembled file has been checked to hold every frame. The output is
then uploaded in one atomic step, and `result.json` is written after it, so its
presence means the job is finished.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import av
import av.error
from faceblur_contract.indexes import format_indexes
from faceblur_contract.records import ChunkResult, JobResult, VerificationReport

from faceblur.errors import InvalidInputError, MediaFileError, ObjectNotFoundError, ResidualFacesError, reason
from faceblur.job.cleanup import remove_intermediates
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest, OutputPlan, StreamAction
from faceblur.job.outputplan import carried_streams, compose_plan, log_plan
from faceblur.job.outputs import check_output, record_publishing
from faceblur.job.state import load_manifest, object_location, unfinished_indexes
from faceblur.media.concat import OutputSpec, Part, SideInput, concat, packet_pts
from faceblur.media.streams import SideStream, refusal
from faceblur.storage import ObjectStore, S3Settings, open_store
from faceblur.verify.contactsheet import contact_sheet
from faceblur.verify.residual import describe, merge, report_url

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
    overwrite: bool = False,
) -> JobResult:
    """Publish the output; refused (ResidualFacesError, nothing published) when the chunks' verification
    found more than `max_residual_frames` frames with a residual face, and (OutputExistsError) when
    the output exists, is not the job's own and `overwrite` is not set."""
    manifest = load_manifest(store, layout)
    missing = unfinished_indexes(store, layout, manifest, debug=debug)
    if missing:
        what = "processed or debug chunks" if debug else "processed chunks"
        raise ObjectNotFoundError(
            f"{len(missing)} of {len(manifest.chunks)} {what} missing"
            f" (indexes {format_indexes(missing, ', ')}): process them first"
        )
    check_output(manifest.input, output_url, store, layout, overwrite=overwrite, s3_settings=s3_settings)
    out_store, out_key = open_store(output_url, s3_settings)
    results = [
        ChunkResult.model_validate_json(store.get_bytes(layout.chunk_result(c.index)))
        for c in manifest.chunks
    ]
    _one_encoder(results)
    report = _verification(store, layout, manifest, results, output_url, max_residual_frames)
    with tempfile.TemporaryDirectory(prefix="faceblur-compose-") as tmp_name:
        tmp = Path(tmp_name)
        plan, side = _side_file(store, layout, manifest, output_url, tmp)
        fmt = plan.container
        output = tmp / f"output{PurePosixPath(out_key).suffix or '.out'}"
        keys = [layout.processed(c.index) for c in manifest.chunks]
        _assemble(store, layout, manifest, output, fmt, keys, tmp, side=side, name=output_url, plan=plan)
        debug_video = sheet = None
        if debug:
            debug_path = tmp / "debug.mp4"
            keys = [layout.debug_chunk(c.index) for c in manifest.chunks]
            _assemble(store, layout, manifest, debug_path, "mp4", keys, tmp)
            residual = report.residual if report is not None else []
            sheet_png = contact_sheet(debug_path, manifest.frame_count, manifest.video.rotation, residual)
        record_publishing(store, layout, output_url)  # before the upload: a retry knows the object
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
        runtimes=list(dict.fromkeys(where for r in results if (where := r.ran_on) is not None)),
        truncated=manifest.video.truncated,
    )
    store.put_bytes(layout.result, result.to_json(), "application/json")
    if cleanup:
        remove_intermediates(store, layout)
    return result


def _one_encoder(results: list[ChunkResult]) -> None:
    """Refuse chunks written by different H.264 encoders (pods on GPUs with and without NVENC under
    `auto`): the output keeps the first chunk's parameter sets, which another encoder's frames do not
    decode with."""
    used: dict[str, list[int]] = {}
    for r in results:
        if r.encoder is not None:
            used.setdefault(r.encoder, []).append(r.index)
    if len(used) > 1:
        which = "; ".join(
            f"{name}: indexes {format_indexes(indexes, ', ')}" for name, indexes in used.items()
        )
        raise InvalidInputError(
            f"the chunks were encoded by different H.264 encoders ({which}), whose streams cannot be"
            " joined: set encoding.encoder (--encoder) to x264, or to nvenc on GPUs that all have NVENC,"
            " and run the job again"
        )


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


def _assemble(
    store: ObjectStore,
    layout: JobLayout,
    manifest: Manifest,
    output: Path,
    fmt: str,
    keys: list[str],
    tmp: Path,
    *,
    side: SideInput | None = None,
    name: str = "",
    plan: OutputPlan | None = None,
) -> None:
    """Download the chunk files of `keys`, concatenate them (with `side`'s streams, as `plan` says)
    and check the result."""
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
    if side is not None:
        copies[side.path] = _side_file_is(store, layout)
    video = manifest.video
    time_base = Fraction(video.time_base)
    spec = OutputSpec(
        path=output,
        format=fmt,
        time_base=time_base,
        end_pts=video.start_pts + round(Fraction(video.duration_s) / time_base),
        rotation=video.rotation,
        tags=video.tags,
        name=name,
        chapters=plan.chapters if plan is not None else (),
        timecode=plan.timecode if plan is not None else None,
        frame_rate=video.avg_frame_rate or video.nominal_frame_rate,
    )
    try:
        frames = concat(parts, spec, side)
    except MediaFileError as exc:  # name the job's object, not its scratch copy
        raise exc.naming(copies) from None
    written, _ = packet_pts(output)
    if frames != manifest.frame_count or len(written) != manifest.frame_count:
        raise InvalidInputError(
            f"assembled {len(written)} frames, expected {manifest.frame_count}: not published"
        )
    for part in parts:
        part.path.unlink()


def _side_file_is(store: ObjectStore, layout: JobLayout) -> tuple[str, str]:
    return (
        f"the input's audio and subtitles ({object_location(store, layout.audio)})",
        "split the input again into a new job",
    )


def _side_file(
    store: ObjectStore, layout: JobLayout, manifest: Manifest, output_url: str, tmp: Path
) -> tuple[OutputPlan, SideInput | None]:
    """The output plan for `output_url` (split's, or made again when the output's container differs)
    and the downloaded side file with what to do with each of its streams (None: nothing kept)."""
    carried = carried_streams(manifest)
    path = tmp / "audio.mka"
    if carried:
        store.download(layout.audio, path)
    templates: dict[int, Any] = {}
    try:
        with av.open(str(path)) if carried else nullcontext() as container:
            if container is not None:
                templates = dict(zip((s.index for s in carried), container.streams, strict=False))

            def refused(fmt: str, stream: SideStream) -> str | None:
                return refusal(fmt, templates[stream.index])

            plan, per_stream = compose_plan(manifest, output_url, refused)
    except av.error.FFmpegError as exc:
        raise MediaFileError(path, f"not readable ({reason(exc)})").naming(
            {path: _side_file_is(store, layout)}
        ) from None
    if plan is manifest.output:  # split's plan, which split logged with its warnings
        log.info("output %s: %s", output_url, plan.summary())
    else:
        log_plan(plan, output_url)
    if not any(s.action is not StreamAction.DROP for s in per_stream):
        return plan, None
    return plan, SideInput(path, per_stream)
