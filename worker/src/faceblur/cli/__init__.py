"""The `faceblur` command line: one machine (`blur`, `probe`) and the pod entry points
(`split`, `process`, `compose`, `cleanup`) that the operator runs.

One module per command, each thin (parse, call, print); the options they share in `options`,
the application and its plumbing in `root`, the console script's `main` here. Every option can
also come from an environment variable `FACEBLUR_<OPTION>`. Errors end the command with one line
on stderr and the exit code of their kind (`faceblur.cli.command`); every command writes one JSON
line to the termination log when one is configured (`faceblur.cli.termination`).
"""

from __future__ import annotations

import sys

# The command modules register with `app` on import, in the order `--help` lists them.
# isort: off
from faceblur.cli import probe, split, process, compose, cleanup, blur  # noqa: F401

# isort: on
from faceblur_contract.exits import ExitCode
from faceblur_contract.records import failure_record

from faceblur.cli.options import processing_options
from faceblur.cli.process import parse_indexes
from faceblur.cli.root import app
from faceblur.cli.termination import was_written, write_termination_log

__all__ = ["app", "main", "parse_indexes", "processing_options"]


def main() -> None:
    """Console script entry point; a command line typer rejects still gets a termination line."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == ExitCode.USAGE and not was_written():
            words = [a for a in sys.argv[1:] if not a.startswith("-")]
            stage = words[0] if words else "faceblur"
            write_termination_log(failure_record(stage, "invalid command line (see --help)", ExitCode.USAGE))
        raise
