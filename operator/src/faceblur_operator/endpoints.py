"""HTTP endpoints for Prometheus and the kubelet's probes.

    GET /metrics   (FACEBLUR_METRICS_PORT)  Prometheus text format
    GET /healthz   (FACEBLUR_HEALTH_PORT)   200 while the event loop answers: liveness
    GET /readyz    (FACEBLUR_HEALTH_PORT)   200 once the operator watches its resources, else 503

Served from the operator's own event loop, so a blocked loop fails liveness. When both ports are
the same, one server answers all three paths.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


def _metrics_routes(registry: CollectorRegistry) -> list[web.RouteDef]:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/metrics", metrics)]


def _health_routes(ready: asyncio.Event) -> list[web.RouteDef]:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="starting\n")

    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]


async def _serve(routes: list[web.RouteDef], host: str, port: int) -> web.AppRunner:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("serving %s on %s:%d", ", ".join(sorted({r.path for r in routes})), host, port)  # type: ignore[attr-defined]
    return runner


async def start_endpoints(
    registry: CollectorRegistry, ready: asyncio.Event, host: str, metrics_port: int, health_port: int
) -> list[web.AppRunner]:
    if metrics_port == health_port:
        return [await _serve(_metrics_routes(registry) + _health_routes(ready), host, metrics_port)]
    return [
        await _serve(_metrics_routes(registry), host, metrics_port),
        await _serve(_health_routes(ready), host, health_port),
    ]


async def stop_endpoints(runners: list[web.AppRunner]) -> None:
    for runner in runners:
        await runner.cleanup()
