"""How a `faceblur` command ends, the contract with whoever runs it (a person or the operator):
one line on stderr and the exit code of the error's kind (`faceblur_contract.exits`), `--verbose`
adding the traceback, and one JSON line in the termination log in every case.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import typer
from faceblur_contract.exits import ExitCode
from faceblur_contract.options import UsageError
from faceblur_contract.records import failure_record
from rich.console import Console
from rich.text import Text

from faceblur.cli.termination import write_termination_log
from faceblur.errors import FaceblurError

LOG_LEVEL_ENV = "FACEBLUR_LOG_LEVEL"
err = Console(stderr=True)


def setup_logging(verbose: bool, pod: bool) -> None:
    default = "INFO" if pod else "WARNING"
    level = "DEBUG" if verbose else os.environ.get(LOG_LEVEL_ENV, default).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


@contextlib.contextmanager
def command(stage: str, verbose: bool, pod: bool = False) -> Iterator[dict[str, Any]]:
    """Run a command body: one-line errors with their exit code, and the termination log."""
    setup_logging(verbose, pod)
    record: dict[str, Any] = {}
    try:
        yield record
    except FaceblurError as exc:
        fail(stage, str(exc), exc.exit_code, verbose, final=exc.final)
    except UsageError as exc:
        fail(stage, str(exc), ExitCode.USAGE, verbose)
    except KeyboardInterrupt:
        fail(stage, "interrupted", ExitCode.INTERNAL, verbose)
    except typer.Exit:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        fail(stage, f"internal error: {type(exc).__name__}: {first}".rstrip(": "), ExitCode.INTERNAL, verbose)
    write_termination_log({"stage": stage, **record})


def fail(stage: str, message: str, code: ExitCode, verbose: bool, *, final: bool = False) -> None:
    """The one error line, the failure record (`final`: no retry can help) and the exit code."""
    if verbose:
        err.print(Text(traceback.format_exc().rstrip(), style="dim"))
    line = " ".join(message.split()) or "failed"
    err.print(Text(f"faceblur {stage}: error: {line}", style="bold red"), soft_wrap=True)
    write_termination_log(failure_record(stage, line, code, final=final))
    raise typer.Exit(int(code))
