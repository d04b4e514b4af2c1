"""Prometheus metrics of the operator, in a registry of its own (served at /metrics).

faceblur_jobs{phase}                          FaceBlurJobs this operator sees, by phase
faceblur_jobs_finished_total{phase,reason}    jobs that reached Succeeded or Failed
faceblur_stage_duration_seconds{stage}        split, work and compose Job durations
faceblur_frames_processed_total               frames of chunks anonymized
faceblur_faces_found_total                    face boxes anonymized
faceblur_reconciles_total{result}             reconcile passes: ok, conflict, error
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from faceblur_operator.api import FaceBlurJobStatus, Phase
from faceblur_operator.naming import Stage
from faceblur_operator.workqueue import Key

STAGE_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


class _PhaseCollector(Collector):
    """Counts jobs per phase at scrape time from the last phase seen of each job."""

    def __init__(self) -> None:
        self.phases: dict[Key, Phase] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "faceblur_jobs", "FaceBlurJobs seen by this operator, by phase", labels=["phase"]
        )
        for phase in Phase:
            family.add_metric([phase.value], sum(1 for p in self.phases.values() if p == phase))
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._phases = _PhaseCollector()
        self.registry.register(self._phases)
        self.finished = Counter(
            "faceblur_jobs_finished", "Jobs that reached Succeeded or Failed", ["phase", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "faceblur_stage_duration_seconds", "Duration of the split, work and compose Jobs", ["stage"],
            buckets=STAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.frames = Counter(
            "faceblur_frames_processed", "Frames of anonymized chunks", registry=self.registry
        )
        self.faces = Counter("faceblur_faces_found", "Face boxes anonymized", registry=self.registry)
        self.reconciles = Counter(
            "faceblur_reconciles", "Reconcile passes by result", ["result"], registry=self.registry
        )

    def observe(
        self,
        key: Key,
        old: FaceBlurJobStatus,
        new: FaceBlurJobStatus,
        finished_stages: tuple[tuple[Stage, float], ...],
    ) -> None:
        """Record one written status: phase, stage durations, and the progress made since the last one."""
        if new.phase is not None:
            self._phases.phases[key] = new.phase
        for stage, seconds in finished_stages:
            self.stage_seconds.labels(stage=stage.value).observe(seconds)
        before, after = old.progress, new.progress
        if after is not None:
            self.frames.inc(max(0, after.frames_processed - (before.frames_processed if before else 0)))
            self.faces.inc(max(0, after.faces_found - (before.faces_found if before else 0)))
        if new.phase is not None and new.phase.terminal and new.phase != old.phase:
            self.finished.labels(phase=new.phase.value, reason=(new.reason or "").__str__()).inc()

    def seen(self, key: Key, phase: Phase | None) -> None:
        """A job's phase as read (e.g. at startup), without counting progress."""
        if phase is not None:
            self._phases.phases[key] = phase

    def forget(self, key: Key) -> None:
        self._phases.phases.pop(key, None)
