"""The few Kubernetes API calls the operator makes, as plain JSON dicts (what the API server sends).

Synchronous (the official client); the reconciler runs them in a thread pool. Every call has a
timeout, so a stuck connection fails instead of blocking a reconcile forever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config

from faceblur_operator import api

log = logging.getLogger(__name__)

TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
MERGE_PATCH = "application/merge-patch+json"
POOL_SIZE = 32  # threads of the reconciler's pool share the connections

JSON = dict[str, Any]


class ConflictError(Exception):
    """The object changed since it was read (409): read again and redo the decision."""


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def load_api_client() -> client.ApiClient:
    """In a pod: its ServiceAccount; elsewhere: KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> JSON:
    """RFC 7386 patch turning `old` into `new`: removed keys become null, lists are replaced whole."""
    patch: JSON = {key: None for key in old.keys() - new.keys()}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


class KubeClient:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    @staticmethod
    def _json(response: Any) -> JSON:
        data: JSON = json.loads(response.data)
        return data

    def get_faceblurjob(self, namespace: str, name: str) -> JSON | None:
        try:
            return self._json(
                self.custom.get_namespaced_custom_object(
                    api.GROUP, api.VERSION, namespace, api.PLURAL, name,
                    _preload_content=False, _request_timeout=TIMEOUT,
                )
            )  # fmt: skip
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def list_jobs(self, namespace: str, selector: str) -> list[JSON]:
        listing = self._json(
            self.batch.list_namespaced_job(
                namespace, label_selector=selector, _preload_content=False, _request_timeout=TIMEOUT
            )
        )
        return list(listing.get("items") or [])

    def list_pods(self, namespace: str, selector: str) -> list[JSON]:
        listing = self._json(
            self.core.list_namespaced_pod(
                namespace, label_selector=selector, _preload_content=False, _request_timeout=TIMEOUT
            )
        )
        return list(listing.get("items") or [])

    def create_job(self, manifest: JSON) -> bool:
        """True if created, False if a Job of that name already exists (a restart or a stale read)."""
        try:
            body: Any = manifest  # the client takes a plain dict as well as a V1Job
            self.batch.create_namespaced_job(
                manifest["metadata"]["namespace"], body, _preload_content=False, _request_timeout=TIMEOUT
            )
        except client.ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def resume_job(self, namespace: str, name: str) -> None:
        """Unsuspend a Job (a deleted FaceBlurJob's cleanup, once its pods are gone)."""
        body = {"spec": {"suspend": False}}
        self.batch.patch_namespaced_job(
            name, namespace, body, _content_type=MERGE_PATCH, _preload_content=False, _request_timeout=TIMEOUT
        )

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and, in the background, its pods; a Job already gone is fine."""
        try:
            self.batch.delete_namespaced_job(
                name,
                namespace,
                propagation_policy="Background",
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except client.ApiException as e:
            if e.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, resource_version: str, patch: JSON) -> JSON:
        """Merge-patch the status, only if the object is still at `resource_version` (else ConflictError)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": patch}
        try:
            return self._json(
                self.custom.patch_namespaced_custom_object_status(
                    api.GROUP, api.VERSION, namespace, api.PLURAL, name, body,
                    _content_type=MERGE_PATCH, _preload_content=False, _request_timeout=TIMEOUT,
                )
            )  # fmt: skip
        except client.ApiException as e:
            if e.status == 409:
                raise ConflictError(f"{namespace}/{name} changed since it was read") from e
            raise
