"""Pod status documents as a kubelet would post them, built from what the local processes did. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from faceblur_testenv.kubeapi import JSON
from faceblur_testenv.nodes import timestamp

MAX_MESSAGE_BYTES = 4096  # the kubelet's limit per container
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
HOST_IP = "127.0.0.1"


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    message: str
    started_at: dt.datetime
    finished_at: dt.datetime
    container_id: str


@dataclass(frozen=True)
class ContainerView:
    """What is known about one container right now: waiting, running, or terminated."""

    name: str
    image: str
    container_id: str = ""
    restart_count: int = 0
    running_since: dt.datetime | None = None
    terminated: Terminated | None = None
    last_terminated: Terminated | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""


def exit_code_of(returncode: int) -> int:
    """Popen's returncode (negative for a signal) as a container runtime reports it (128 + signal)."""
    return 128 - returncode if returncode < 0 else returncode


def terminated_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


def termination_message(file_text: str, log_text: str, fallback_to_logs: bool, exit_code: int) -> str:
    """The file's content; with FallbackToLogsOnError and a failure and an empty file, the log's tail."""
    if file_text.strip() or not (fallback_to_logs and exit_code != 0):
        return _clip_head(file_text, MAX_MESSAGE_BYTES)
    tail = "\n".join(log_text.splitlines()[-FALLBACK_LOG_LINES:])
    data = tail.encode()[-FALLBACK_LOG_BYTES:]
    return data.decode(errors="ignore")


def _clip_head(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def _terminated_json(t: Terminated) -> JSON:
    state: JSON = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "startedAt": timestamp(t.started_at),
        "finishedAt": timestamp(t.finished_at),
        "containerID": t.container_id,
    }
    if t.message:
        state["message"] = t.message
    return state


def container_status(view: ContainerView) -> JSON:
    if view.terminated is not None:
        state: JSON = {"terminated": _terminated_json(view.terminated)}
    elif view.running_since is not None:
        state = {"running": {"startedAt": timestamp(view.running_since)}}
    else:
        waiting: JSON = {"reason": view.waiting_reason}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        state = {"waiting": waiting}
    status: JSON = {
        "name": view.name,
        "image": view.image,
        "imageID": "",
        "ready": view.running_since is not None and view.terminated is None,
        "started": view.running_since is not None and view.terminated is None,
        "restartCount": view.restart_count,
        "state": state,
        "lastState": {"terminated": _terminated_json(view.last_terminated)} if view.last_terminated else {},
    }
    if view.container_id:
        status["containerID"] = view.container_id
    return status


def _condition(kind: str, ok: bool, now: dt.datetime, reason: str = "") -> JSON:
    condition: JSON = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastTransitionTime": timestamp(now),
    }
    if reason:
        condition["reason"] = reason
    return condition


def pod_status_patch(
    uid: str,
    phase: str,
    started: dt.datetime,
    now: dt.datetime,
    init_containers: Sequence[ContainerView],
    containers: Sequence[ContainerView],
    message: str = "",
    reason: str = "",
) -> JSON:
    """A strategic-merge patch of pods/status; metadata.uid makes it fail on a recreated namesake."""
    terminal = phase in ("Succeeded", "Failed")
    all_running = bool(containers) and all(c.running_since and not c.terminated for c in containers)
    initialized = all(c.terminated is not None and c.terminated.exit_code == 0 for c in init_containers)
    not_ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    status: JSON = {
        "phase": phase,
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": HOST_IP,
        "podIPs": [{"ip": HOST_IP}],
        "startTime": timestamp(started),
        "conditions": [
            _condition("PodReadyToStartContainers", not terminal, now),
            _condition("Initialized", initialized, now, "" if initialized else "ContainersNotInitialized"),
            _condition("ContainersReady", all_running, now, "" if all_running else not_ready_reason),
            _condition("Ready", all_running, now, "" if all_running else not_ready_reason),
        ],
        "containerStatuses": [container_status(c) for c in containers],
    }
    if init_containers:
        status["initContainerStatuses"] = [container_status(c) for c in init_containers]
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    return {"metadata": {"uid": uid}, "status": status}


def pod_phase(exit_codes: Sequence[int]) -> str:
    """Terminal phase once every container has exited for good."""
    return "Succeeded" if all(code == 0 for code in exit_codes) else "Failed"
