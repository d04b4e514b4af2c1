"""Running the project's build scripts (scripts/build-*.sh): what they print on stdout is the result."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_build_script(
    script: Path, error: type[Exception], args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> str:
    """The script's stdout; its progress goes to our stderr. A failure or an empty stdout raises `error`.

    env replaces the script's environment; None inherits ours.
    """
    done = subprocess.run(
        ["bash", str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise error(f"{script} failed with exit code {done.returncode} (its stderr is above)")
    return done.stdout


def last_line(output: str) -> str:
    """The path a script prints on its last stdout line."""
    return output.strip().splitlines()[-1]
