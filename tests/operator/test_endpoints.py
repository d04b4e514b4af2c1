"""Metrics, health endpoints and kopf settings."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from faceblur_operator.api import FaceBlurJobStatus, Phase, Progress, Reason
from faceblur_operator.endpoints import start_endpoints, stop_endpoints
from faceblur_operator.main import kopf_settings
from faceblur_operator.metrics import Metrics
from faceblur_operator.naming import Stage
from faceblur_operator.workqueue import Key
from faceblur_testenv.processes import free_ports
from operator_support import config


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.parametrize("same_port", [False, True])
def test_metrics_health_and_readiness(same_port: bool) -> None:
    metrics = Metrics()
    key = Key("ns", "clip")
    running = FaceBlurJobStatus(phase=Phase.PROCESSING, progress=Progress(frames_processed=10, faces_found=4))
    done = FaceBlurJobStatus(
        phase=Phase.SUCCEEDED, reason=Reason.SUCCEEDED, progress=Progress(frames_processed=40, faces_found=9)
    )
    metrics.observe(key, FaceBlurJobStatus(), running, ((Stage.SPLIT, 3.0),))
    metrics.observe(key, running, done, ((Stage.WORK, 20.0), (Stage.COMPOSE, 2.0)))
    metrics_port, health_port = free_ports(2)
    health_port = metrics_port if same_port else health_port

    async def scrape() -> list[tuple[int, str]]:
        ready = asyncio.Event()
        runners = await start_endpoints(metrics.registry, ready, "127.0.0.1", metrics_port, health_port)
        try:
            before = await asyncio.to_thread(_get, f"http://127.0.0.1:{health_port}/readyz")
            ready.set()
            paths = [(health_port, "/readyz"), (health_port, "/healthz"), (metrics_port, "/metrics")]
            after = [await asyncio.to_thread(_get, f"http://127.0.0.1:{port}{path}") for port, path in paths]
            return [before, *after]
        finally:
            await stop_endpoints(runners)

    not_ready, ready_, alive, scraped = asyncio.run(scrape())
    assert (not_ready[0], ready_[0], alive[0], scraped[0]) == (503, 200, 200, 200)
    text = scraped[1]
    assert 'faceblur_jobs{phase="Succeeded"} 1.0' in text
    assert 'faceblur_jobs{phase="Processing"} 0.0' in text
    assert "faceblur_frames_processed_total 40.0" in text  # deltas: 10, then 30
    assert "faceblur_faces_found_total 9.0" in text
    assert 'faceblur_stage_duration_seconds_count{stage="work"} 1.0' in text
    assert 'faceblur_jobs_finished_total{phase="Succeeded",reason="Succeeded"} 1.0' in text
    metrics.forget(key)
    assert 'faceblur_jobs{phase="Succeeded"} 0.0' in metrics_text(metrics)


def metrics_text(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_kopf_settings_avoid_the_known_pitfalls() -> None:
    settings = kopf_settings(config())
    server, client = settings.watching.server_timeout, settings.watching.client_timeout
    assert server is not None
    assert client is not None
    assert 0 < server < client
    assert settings.peering.standalone is True
    assert settings.scanning.disabled is True
    progress = settings.persistence.progress_storage
    assert type(progress).__name__ == "AnnotationsProgressStorage"  # never into the status
    assert getattr(progress, "prefix", None) == "kopf.faceblur.dev"  # not faceblur.dev: retry must be seen
