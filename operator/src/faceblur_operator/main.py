"""`faceblur-operator`: run the operator with the settings from the environment (see settings.py).

kopf settings chosen against its known pitfalls:
- watch requests end server-side after ~4.5 min and client-side after 5 min, so a silently dead
  connection is noticed and the watch restarts (plus kopf's own inactivity timeout);
- standalone (no peering objects): exactly one operator runs, guaranteed by the Deployment's single
  replica and Recreate strategy, so no peering CRDs or RBAC are needed;
- kopf's handler progress and last-handled spec go to `kopf.faceblur.dev/*` annotations, not the status;
- no finalizers anywhere: deleting a FaceBlurJob never waits for the operator.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import kopf

from faceblur_operator import handlers
from faceblur_operator.endpoints import start_endpoints, stop_endpoints
from faceblur_operator.kube import KubeClient, load_api_client
from faceblur_operator.metrics import Metrics
from faceblur_operator.naming import DOMAIN, MANAGED_SELECTOR
from faceblur_operator.reconciler import Reconciler
from faceblur_operator.settings import OperatorConfig, SettingsError, load_config
from faceblur_operator.stages import Event

log = logging.getLogger("faceblur_operator")

WATCH_SERVER_TIMEOUT_S = 270
WATCH_CLIENT_TIMEOUT_S = 300
CONNECT_TIMEOUT_S = 30
KOPF_PREFIX = f"kopf.{DOMAIN}"
REQUEST_TIMEOUT_S = 60


def kopf_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT_S
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT_S
    settings.watching.connect_timeout = CONNECT_TIMEOUT_S
    settings.networking.request_timeout = REQUEST_TIMEOUT_S
    settings.networking.connect_timeout = CONNECT_TIMEOUT_S
    # Only our own Jobs and pods are listed and watched, filtered by the API server.
    settings.watching.label_selectors["batch", "v1", "jobs"] = MANAGED_SELECTOR
    settings.watching.label_selectors["", "v1", "pods"] = MANAGED_SELECTOR
    settings.peering.standalone = True
    # No dynamic discovery of namespaces and CRDs: nothing to list cluster-wide beyond our own
    # objects. The CRD must exist when the operator starts (the chart installs it first), and
    # FACEBLUR_NAMESPACES takes exact names.
    settings.scanning.disabled = True
    # A prefix of kopf's own: kopf ignores every annotation under its storage prefix when it
    # looks for changes, and faceblur.dev/retry must count as one.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "faceblur-operator"
    settings.posting.level = logging.WARNING  # kopf's own events: failures only; ours are explicit
    return settings


def post_event(body: Any, event: Event) -> None:
    kopf.event(body, type=event.type, reason=event.reason.value, message=event.message[:1000])


async def run(config: OperatorConfig) -> None:
    metrics = Metrics()
    reconciler = Reconciler(config, KubeClient(load_api_client()), metrics, post_event)
    ready = asyncio.Event()
    runners = await start_endpoints(
        metrics.registry, ready, config.bind_address, config.metrics_port, config.health_port
    )
    try:
        await kopf.operator(
            registry=handlers.registry,
            settings=kopf_settings(config),
            memo=kopf.Memo(runtime=handlers.Runtime(reconciler)),
            standalone=True,
            clusterwide=config.clusterwide,
            namespaces=config.namespaces,
            ready_flag=ready,
        )
    finally:
        await stop_endpoints(runners)
        reconciler.close()


def main() -> None:
    try:
        config = load_config()
    except SettingsError as e:
        print(f"faceblur-operator: {e}", file=sys.stderr)
        sys.exit(2)
    kopf.configure(verbose=config.log_level == "DEBUG", quiet=config.log_level in ("WARNING", "ERROR"))
    logging.getLogger().setLevel(config.log_level)
    if config.log_level != "DEBUG":  # kopf logs every handled watch event at INFO: thousands per job
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    where = "all namespaces" if config.clusterwide else ", ".join(config.namespaces)
    log.info("faceblur-operator watching %s; worker image %s", where, config.worker_image)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
