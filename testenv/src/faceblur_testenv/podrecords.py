"""What the pod runner leaves on disk for tests: per-pod folders with logs, and a record of every run.

Layout under the runner's folder:
  pods/<namespace>/<pod name>/<pod uid>/<container>.log            stdout+stderr of the container
  pods/<namespace>/<pod name>/<pod uid>/<container>.termination-log FACEBLUR_TERMINATION_LOG
  runs.jsonl                                                      one line per pod start and pod end
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


def pod_folder(root: Path, namespace: str, name: str, uid: str) -> Path:
    return root / "pods" / namespace / name / uid


def records_file(root: Path) -> Path:
    return root / "runs.jsonl"


@dataclass(frozen=True)
class PodRun:
    """One pod as the runner ran it: when its processes started and ended (epoch seconds), how it ended."""

    namespace: str
    name: str
    uid: str
    node: str
    started: float
    labels: dict[str, str] = field(default_factory=dict)
    finished: float | None = None
    phase: str = "Running"
    exit_codes: dict[str, int] = field(default_factory=dict)


class RunRecorder:
    """Appends PodRun events to runs.jsonl; safe to call from several threads."""

    def __init__(self, root: Path):
        self._path = records_file(root)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, run: PodRun) -> None:
        line = json.dumps(asdict(run), sort_keys=True) + "\n"
        with self._lock, self._path.open("a") as out:
            out.write(line)


def read_runs(root: Path) -> list[PodRun]:
    """Every pod run so far, the latest event per pod uid, in start order."""
    latest: dict[str, PodRun] = {}
    try:
        lines = records_file(root).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        if line.strip():
            run = PodRun(**json.loads(line))
            latest[run.uid] = run
    return sorted(latest.values(), key=lambda r: r.started)


def runs_matching(runs: Iterable[PodRun], namespace: str, labels: Mapping[str, str]) -> list[PodRun]:
    return [
        r for r in runs if r.namespace == namespace and all(r.labels.get(k) == v for k, v in labels.items())
    ]


def peak_concurrency(runs: Iterable[PodRun], now: float | None = None) -> int:
    """The largest number of runs whose [started, finished) intervals overlap; open runs end at `now`."""
    events: list[tuple[float, int]] = []
    for run in runs:
        end = run.finished if run.finished is not None else now
        if end is None:
            end = float("inf")
        events += [(run.started, 1), (end, -1)]
    peak = current = 0
    for _, step in sorted(events):  # an end (-1) sorts before a start (+1) at the same instant
        current += step
        peak = max(peak, current)
    return peak


def finished(run: PodRun, at: float, phase: str, exit_codes: Mapping[str, int]) -> PodRun:
    return replace(run, finished=at, phase=phase, exit_codes=dict(exit_codes))


def pod_log_text(root: Path, namespace: str, name: str) -> str:
    """The logs of the most recent pod of that name (several containers: each under a header)."""
    base = root / "pods" / namespace / name
    uids = sorted(base.glob("*/"), key=lambda p: p.stat().st_mtime) if base.is_dir() else []
    if not uids:
        raise FileNotFoundError(f"no log for pod {namespace}/{name} under {base}")
    logs = sorted(uids[-1].glob("*.log"))
    if len(logs) == 1:
        return logs[0].read_text(errors="replace")
    return "".join(f"==> {p.stem} <==\n{p.read_text(errors='replace')}" for p in logs)
