"""The progress UI of the `faceblur` commands: a frames bar with frames/s and ETA on stderr.

It is drawn only when stderr is a terminal, so pods and pipes get plain log lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from faceblur.job.blur import Reporter

err = Console(stderr=True)


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} fps" if speed else "-- fps", style="cyan")


def _new_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        FpsColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )


@contextlib.contextmanager
def progress_bar(total: int, description: str) -> Iterator[Any]:
    with _new_progress() as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


class RichReporter(Reporter):
    """Shows the stage and a frames bar (frames/s, ETA) on stderr while `blur` runs."""

    def __init__(self) -> None:
        self._progress = _new_progress()
        self._task = self._progress.add_task("split", total=None)

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stage(self, name: str, total_frames: int | None = None, done_frames: int = 0) -> None:
        if total_frames is None:
            self._progress.update(self._task, description=name)
        else:
            self._progress.reset(self._task, total=total_frames, completed=done_frames, description=name)

    def frames(self, count: int) -> None:
        self._progress.advance(self._task, count)
