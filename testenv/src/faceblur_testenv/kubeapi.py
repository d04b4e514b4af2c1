"""A small typed REST client for the test API server (JSON in, JSON out, client-certificate auth).

The readiness checks and the tests need a handful of verbs, explicit patch content types and a
line-by-line watch stream; a direct client keeps those visible instead of going through a generated SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml

JSON = dict[str, Any]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """Where the server is and how to prove who we are."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        """Read a kubeconfig written by `faceblur_testenv.kubeconfig` (file references, current context)."""
        doc = yaml.safe_load(path.read_text())
        context = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
        return cls(
            server=cluster["server"],
            ca_file=Path(cluster["certificate-authority"]),
            cert_file=Path(user["client-certificate"]),
            key_file=Path(user["client-key"]),
        )


class KubeApi:
    """Blocking, thread-safe calls against one API server."""

    def __init__(self, credentials: Credentials, timeout_s: float = 30.0):
        self.server = credentials.server.rstrip("/")
        self.ca_file = credentials.ca_file
        self._timeout = timeout_s
        self._http = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(credentials.ca_file),
            cert_file=str(credentials.cert_file),
            key_file=str(credentials.key_file),
            retries=False,
        )

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        """One call; returns the decoded JSON answer or raises ApiError."""
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = json.dumps(body).encode()
        response = self._http.request(
            method, self._url(path, params), body=payload, headers=headers, timeout=self._timeout
        )
        return _decode(response)

    def _url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        return self.server + path + ("?" + urlencode(params) if params else "")

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> JSON:
        return self.request("GET", path, params=params)

    def create(self, path: str, body: JSON) -> JSON:
        return self.request("POST", path, body)

    def patch(self, path: str, body: object, patch_type: str = "strategic") -> JSON:
        return self.request("PATCH", path, body, content_type=PATCH_TYPES[patch_type])

    def put(self, path: str, body: JSON) -> JSON:
        return self.request("PUT", path, body)

    def delete(self, path: str, options: JSON | None = None) -> JSON:
        return self.request("DELETE", path, options or {})

    def probe(self, path: str) -> tuple[int, str]:
        """GET a health endpoint; (status, body text), status 0 when the server cannot be reached."""
        try:
            response = self._http.request("GET", self.server + path, timeout=2.0)
        except urllib3.exceptions.HTTPError as exc:
            return 0, str(exc)
        return response.status, response.data.decode(errors="replace")

    def watch(self, path: str, resource_version: str, timeout_s: int = 60, **params: str) -> Iterator[JSON]:
        """Watch events (`{"type": ..., "object": ...}`) from resource_version until the server ends it."""
        query: dict[str, str | int] = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_s,
            **params,
        }
        response = self._http.request(
            "GET",
            self._url(path, query),
            headers={"Accept": "application/json"},
            preload_content=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout_s + 15.0),
        )
        try:
            if response.status >= 400:
                _decode(response, response.read())
            pending = b""
            for chunk in response.stream(64 * 1024):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()


def _decode(response: urllib3.BaseHTTPResponse, data: bytes | None = None) -> JSON:
    raw = response.data if data is None else data
    try:
        doc: JSON = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        doc = {"message": raw.decode(errors="replace")[:500]}
    if response.status >= 400:
        raise ApiError(response.status, str(doc.get("reason", "")), str(doc.get("message", doc)))
    return doc
