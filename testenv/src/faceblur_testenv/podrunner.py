"""The local pod runner: a stand-in for kubelets, so that the real scheduler and job controller can run
Jobs here without containers.

What it does:
- registers Node objects (Ready, with cpu/memory/pods and `nvidia.com/gpu` capacity) and keeps them
  alive (a Lease renewed every 10 s, the node status every 30 s), so the node lifecycle controller
  neither taints nor evicts;
- watches pods bound to its nodes and runs each container's `command` + `args` as a local process in
  its own process group, with PATH starting at this checkout's venv (`faceblur`, `faceblur-operator`
  run this checkout's code), the environment from the pod spec (`value`, `$(VAR)` expansion,
  `fieldRef` incl. `metadata.annotations['batch.kubernetes.io/job-completion-index']`,
  `resourceFieldRef`, `secretKeyRef`, `configMapKeyRef`, `envFrom`), and `FACEBLUR_TERMINATION_LOG`
  pointing at a per-container file whose content becomes the termination message
  (`FallbackToLogsOnError` uses the log tail when that file is empty and the container failed);
- runs init containers first, one after the other; honours `restartPolicy` (Never, OnFailure, Always),
  restarting after 1, 2, 4, ... 10 s instead of the kubelet's 10 s to 5 min;
- posts pod status as a kubelet does: Running with startTime and containerStatuses, then Succeeded or
  Failed with exit code, reason, message and finishedAt;
- on pod deletion, SIGTERMs the process group, SIGKILLs it after the grace period, posts the terminal
  status, then confirms the deletion with gracePeriodSeconds=0 (finalizers, e.g. the job controller's,
  still hold the object until their owners remove them);
- keeps each container's stdout+stderr in `<root>/pods/<namespace>/<pod>/<uid>/<container>.log` and a
  record of every pod run (start, end, exit codes) in `<root>/runs.jsonl`.

What it does not do:
- no images: the image is never pulled; the command runs from this checkout on this machine (a
  container without `command` gets the entry point registered for its image name, e.g.
  `faceblur/worker` -> `faceblur`, else it fails with CreateContainerConfigError);
- no volumes except emptyDir, Secret, ConfigMap, downwardAPI and projected ones (materialized as
  folders under the pod's folder) and hostPath (the host path itself); a path under a mountPath is
  rewritten to that folder only where it appears in `command`, `args`, env values or `workingDir`, not
  inside files or code;
- no in-cluster configuration: the projected service-account token is written to the pod's folder
  (a TokenRequest bound to the pod, valid a day, never rotated) and `KUBECONFIG` points to a kubeconfig
  using it, so clients that fall back to KUBECONFIG (kopf, the Python client, kubectl) act as the pod's
  service account; KUBERNETES_SERVICE_HOST is deliberately unset;
- no network isolation: every pod shares the host's network, its IP is 127.0.0.1, Services do not route;
- no resource enforcement: requests and limits only matter to the scheduler; no cgroups, no OOM kills;
- no probes, no lifecycle hooks, no pod-level activeDeadlineSeconds, no `kubectl logs`/`exec`/`port-forward`,
  no image pull secrets, no security context (processes run as the user running the tests).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import urllib3

from faceblur_testenv import nodes as nodedocs
from faceblur_testenv.kubeapi import JSON, ApiError, KubeApi
from faceblur_testenv.podrecords import PodRun, RunRecorder, finished, pod_folder
from faceblur_testenv.podspec import (
    DEFAULT_ENTRYPOINTS,
    ContainerConfigError,
    ContainerLaunch,
    plan_container,
    token_volume,
    volume_files,
)
from faceblur_testenv.podstatus import (
    ContainerView,
    Terminated,
    exit_code_of,
    pod_phase,
    pod_status_patch,
    terminated_reason,
    termination_message,
)
from faceblur_testenv.processes import die_with_parent, stop_group

log = logging.getLogger(__name__)

LEASE_RENEW_S = 10.0
NODE_STATUS_S = 30.0
POLL_S = 0.1
MAX_GRACE_S = 30.0
STATUS_ATTEMPTS = 6
CONFIG_ERROR = "CreateContainerConfigError"
TOKEN_LIFETIME_S = 86400
PASSED_ENV = ("HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PodRunner:
    """Registers the nodes, watches pods, and runs those bound to its nodes (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        root: Path,
        node_specs: Sequence[nodedocs.NodeSpec],
        path_prefix: str,
        entrypoints: Mapping[str, Sequence[str]] = DEFAULT_ENTRYPOINTS,
        passed_env: Sequence[str] = PASSED_ENV,
    ):
        self.api = api
        self.root = root
        self.nodes = {n.name: n for n in node_specs}
        self.path_prefix = path_prefix
        self.entrypoints = entrypoints
        self.passed_env = passed_env
        self.recorder = RunRecorder(root)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._workers: dict[str, PodWorker] = {}
        self._seen: set[str] = set()  # every pod uid ever taken on: a pod is run at most once
        self._confirmed: set[str] = set()  # uids whose deletion we confirmed
        self._ready_since = now()

    # ---- nodes -----------------------------------------------------------------------------------

    def register_nodes(self) -> None:
        for spec in self.nodes.values():
            try:
                self.api.create("/api/v1/nodes", nodedocs.node_object(spec))
            except ApiError as exc:
                if exc.status != 409:
                    raise
            self._post_node_status(spec)
            self._renew_lease(spec)
        log.info("registered nodes %s", ", ".join(self.nodes))

    def _post_node_status(self, spec: nodedocs.NodeSpec) -> None:
        body = nodedocs.node_status(spec, now(), self._ready_since)
        self.api.patch(f"/api/v1/nodes/{spec.name}/status", body)

    def _renew_lease(self, spec: nodedocs.NodeSpec) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{nodedocs.LEASE_NAMESPACE}/leases"
        moment = now()
        try:
            self.api.patch(
                f"{path}/{spec.name}", {"spec": {"renewTime": nodedocs.micro_timestamp(moment)}}, "merge"
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            uid = self.api.get(f"/api/v1/nodes/{spec.name}")["metadata"]["uid"]
            self.api.create(path, nodedocs.lease_object(spec.name, uid, moment))

    def heartbeat_forever(self) -> None:
        last_status = time.monotonic()
        while not self.stopping.wait(LEASE_RENEW_S):
            post_status = time.monotonic() - last_status >= NODE_STATUS_S
            for spec in self.nodes.values():
                try:
                    self._renew_lease(spec)
                    if post_status:
                        self._post_node_status(spec)
                except Exception as exc:  # keep beating: a silent node gets its pods evicted
                    log.warning("heartbeat of node %s failed: %s", spec.name, exc)
            if post_status:
                last_status = time.monotonic()

    # ---- pods ------------------------------------------------------------------------------------

    def watch_forever(self) -> None:
        """List, then watch from the list's resourceVersion; relist when the watch expires or fails."""
        while not self.stopping.is_set():
            try:
                listing = self.api.get("/api/v1/pods")
                version = listing["metadata"]["resourceVersion"]
                present = set()
                for pod in listing.get("items", []):
                    present.add(pod["metadata"]["uid"])
                    self._handle("ADDED", pod)
                with self._lock:
                    vanished = [w for uid, w in self._workers.items() if uid not in present]
                for worker in vanished:
                    worker.request_stop(0.0, gone=True)
                self._watch_from(version)
            except Exception as exc:  # the watch must outlive any failure, or no pod would run again
                if self.stopping.is_set():
                    return
                log.warning("pod watch interrupted (%s); listing again", exc)
                self.stopping.wait(1.0)

    def _watch_from(self, version: str) -> None:
        while not self.stopping.is_set():
            for event in self.api.watch("/api/v1/pods", version, timeout_s=60):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return  # too old: relist
                    raise ApiError(int(obj.get("code", 500)), str(obj.get("reason")), str(obj.get("message")))
                version = obj["metadata"]["resourceVersion"]
                self._handle(kind, obj)

    def _handle(self, kind: str, pod: JSON) -> None:
        """One watch event; a failure on one pod is logged and does not stop the others."""
        try:
            if kind in ("ADDED", "MODIFIED"):
                self.sync(pod)
            elif kind == "DELETED":
                self.forget(pod)
        except Exception:
            meta = pod.get("metadata", {})
            log.exception("pod %s/%s: %s event not handled", meta.get("namespace"), meta.get("name"), kind)

    def mine(self, pod: JSON) -> bool:
        return pod.get("spec", {}).get("nodeName") in self.nodes

    def sync(self, pod: JSON) -> None:
        """React to the current state of one pod: start it, stop it, or confirm its deletion."""
        if not self.mine(pod) or self.stopping.is_set():
            return
        meta = pod["metadata"]
        uid, deleting = meta["uid"], meta.get("deletionTimestamp") is not None
        with self._lock:
            worker = self._workers.get(uid)
            new = uid not in self._seen
            self._seen.add(uid)
        if worker is not None:
            if deleting:
                grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                worker.request_stop(min(grace, MAX_GRACE_S))
            return
        phase = pod.get("status", {}).get("phase", "Pending")
        if new and not deleting and phase == "Pending":
            worker = PodWorker(self, pod)
            with self._lock:
                self._workers[uid] = worker
            worker.start()
            return
        if new and phase in ("Pending", "Running"):
            # Deleted before we ran it, or running under an earlier runner whose processes are gone.
            self.post_status(pod, self._abandoned_status(pod, deleting))
        if deleting:
            self.confirm_deletion(pod)

    def _abandoned_status(self, pod: JSON, deleting: bool) -> JSON:
        moment = now()
        views = [
            ContainerView(c["name"], c.get("image", ""), waiting_reason="ContainerStatusUnknown")
            for c in pod["spec"]["containers"]
        ]
        message = "deleted before it ran" if deleting else "the pod runner that ran it is gone"
        return pod_status_patch(
            pod["metadata"]["uid"], "Failed", moment, moment, [], views, message=message, reason="Terminated"
        )

    def forget(self, pod: JSON) -> None:
        with self._lock:
            worker = self._workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.request_stop(0.0, gone=True)

    def worker_done(self, uid: str) -> None:
        with self._lock:
            self._workers.pop(uid, None)

    def post_status(self, pod: JSON, patch: JSON) -> None:
        """Patch pods/status, retrying transient failures: a lost terminal status would hang its Job."""
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        for attempt in range(STATUS_ATTEMPTS):
            try:
                self.api.patch(path, patch)
                return
            except ApiError as exc:
                if exc.status in (404, 409):  # gone, or a new pod of the same name
                    log.debug("status of %s/%s not posted: %s", meta["namespace"], meta["name"], exc)
                    return
                if exc.status < 500 and exc.status != 429:
                    raise
                failure: Exception = exc
            except urllib3.exceptions.HTTPError as exc:
                failure = exc
            log.warning(
                "posting status of %s/%s failed (%s); retrying", meta["namespace"], meta["name"], failure
            )
            time.sleep(0.5 * 2**attempt)
        raise RuntimeError(f"could not post the status of pod {meta['namespace']}/{meta['name']}")

    def confirm_deletion(self, pod: JSON) -> None:
        """What the kubelet does once a deleted pod's containers are gone: delete it with grace 0."""
        meta = pod["metadata"]
        with self._lock:
            if meta["uid"] in self._confirmed:
                return
            self._confirmed.add(meta["uid"])
        try:
            self.api.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )
        except ApiError as exc:
            if exc.status not in (404, 409):
                with self._lock:
                    self._confirmed.discard(meta["uid"])
                raise

    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """Secret or ConfigMap data as text, None when it does not exist."""
        try:
            obj = self.api.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, str] = dict(obj.get("data") or {})
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        else:
            binary = obj.get("binaryData") or {}
            data.update({k: base64.b64decode(v).decode(errors="replace") for k, v in binary.items()})
        return data

    def issue_token(self, pod: JSON, audience: str | None, expiration_s: int) -> str:
        """A token of the pod's service account bound to the pod (TokenRequest), valid at least a day:
        the kubelet rotates projected tokens, the runner does not."""
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": max(expiration_s, TOKEN_LIFETIME_S),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        try:
            return str(self.api.create(path, request)["status"]["token"])
        except ApiError as exc:
            raise ContainerConfigError(f"no token for service account {account}: {exc.message}") from exc

    def write_kubeconfig(self, pod: JSON, token_file: Path, target: Path) -> Path:
        """A kubeconfig that speaks as the pod's service account (what in-cluster config would do)."""
        account = pod["spec"].get("serviceAccountName") or "default"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {"server": self.api.server, "certificate-authority": str(self.api.ca_file)},
                }
            ],
            "users": [{"name": account, "user": {"tokenFile": str(token_file)}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {
                        "cluster": "in-cluster",
                        "user": account,
                        "namespace": pod["metadata"]["namespace"],
                    },
                }
            ],
            "current-context": "in-cluster",
        }
        target.write_text(json.dumps(document, indent=2))
        return target

    def base_env(self, pod: JSON, pod_dir: Path, kubeconfig: Path | None) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.passed_env if name in os.environ}
        env.update(
            {
                "PATH": f"{self.path_prefix}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                "HOSTNAME": pod["metadata"]["name"],
                "TMPDIR": str(pod_dir / "tmp"),
                "PYTHONUNBUFFERED": "1",  # as worker images set it: logs arrive line by line
            }
        )
        # No KUBERNETES_SERVICE_HOST: in-cluster configuration must fail fast and clients fall back to
        # KUBECONFIG, which carries the pod's own service-account token.
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return env

    def shutdown(self) -> None:
        """Stop watching and kill every pod process (no status updates: the cluster may be going too)."""
        self.stopping.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.request_stop(0.0, gone=True)
        for worker in workers:
            worker.join(timeout=10)


class PodWorker(threading.Thread):
    """Runs one pod's containers to the end, posting its status along the way."""

    def __init__(self, runner: PodRunner, pod: JSON):
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.runner = runner
        self.pod = pod
        self.uid: str = meta["uid"]
        self.dir = pod_folder(runner.root, meta["namespace"], meta["name"], self.uid)
        self.started = now()
        self._stop_requested = threading.Event()
        self._grace = 0.0
        self._gone = False
        self._restart_policy = pod["spec"].get("restartPolicy", "Always")

    def request_stop(self, grace_s: float, gone: bool = False) -> None:
        self._grace = grace_s if not self._stop_requested.is_set() else min(self._grace, grace_s)
        self._gone = self._gone or gone
        self._stop_requested.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("pod %s failed inside the pod runner", self.name)
            self._report_internal_error(exc)
        finally:
            self.runner.worker_done(self.uid)

    def _report_internal_error(self, exc: Exception) -> None:
        """Best effort: mark the pod Failed so that its Job does not wait forever on a bug of ours."""
        views = [ContainerView(c["name"], c.get("image", "")) for c in self.pod["spec"]["containers"]]
        patch = pod_status_patch(
            self.uid,
            "Failed",
            self.started,
            now(),
            [],
            views,
            message=f"pod runner error: {exc}",
            reason="Error",
        )
        try:
            self.runner.post_status(self.pod, patch)
        except Exception:
            log.exception("could not report the failure of pod %s", self.name)

    # ---- the pod's life --------------------------------------------------------------------------

    def _run(self) -> None:
        spec = self.pod["spec"]
        for sub in ("work", "tmp", "volumes"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        plans = self._plan_until_possible(spec)
        if plans is None:
            return self._finish_deleted(
                [], [ContainerView(c["name"], c.get("image", "")) for c in spec["containers"]]
            )
        init_plans, main_plans = plans
        meta = self.pod["metadata"]
        run = PodRun(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=self.uid,
            node=spec["nodeName"],
            started=time.time(),
            labels=dict(meta.get("labels") or {}),
        )
        self.runner.recorder.write(run)

        init_views = [ContainerView(p.name, p.image) for p in init_plans]
        for i, plan in enumerate(init_plans):
            init_views[i] = self._run_init(plan, init_views, i)
            done = init_views[i].terminated
            if self._stop_requested.is_set() or done is None:
                break
            if done.exit_code != 0:
                views = [ContainerView(p.name, p.image, waiting_reason="PodInitializing") for p in main_plans]
                return self._finish(run, init_views, views, deleted=False)
        if self._stop_requested.is_set():
            views = [ContainerView(p.name, p.image, waiting_reason="PodInitializing") for p in main_plans]
            return self._finish(run, init_views, views, deleted=True)
        self._run_containers(run, init_views, main_plans)

    def _plan_until_possible(self, spec: JSON) -> tuple[list[ContainerLaunch], list[ContainerLaunch]] | None:
        """Plan every container; while a Secret/ConfigMap is missing, say so in status and retry."""
        while True:
            try:
                return self._plan(spec)
            except ContainerConfigError as exc:
                views = [
                    ContainerView(
                        c["name"], c.get("image", ""), waiting_reason=CONFIG_ERROR, waiting_message=str(exc)
                    )
                    for c in spec["containers"]
                ]
                self.runner.post_status(
                    self.pod, pod_status_patch(self.uid, "Pending", self.started, now(), [], views)
                )
                if self._stop_requested.wait(2.0):
                    return None

    def _plan(self, spec: JSON) -> tuple[list[ContainerLaunch], list[ContainerLaunch]]:
        runner = self.runner

        def issue_token(audience: str | None, expiration_s: int) -> str:
            return runner.issue_token(self.pod, audience, expiration_s)

        for volume in spec.get("volumes", []):
            files = volume_files(volume, self.pod, runner.lookup, issue_token)
            if files is None:
                continue
            folder = self.dir / "volumes" / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for rel, text in files.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_text(text)
        kubeconfig = None
        if (volume_name := token_volume(self.pod)) is not None:
            token_file = self.dir / "volumes" / volume_name / "token"
            kubeconfig = runner.write_kubeconfig(self.pod, token_file, self.dir / "kubeconfig")
        base = runner.base_env(self.pod, self.dir, kubeconfig)
        allocatable = nodedocs.capacity(runner.nodes[spec["nodeName"]])

        def plan(container: JSON) -> ContainerLaunch:
            return plan_container(
                self.pod, container, runner.lookup, base, allocatable, runner.entrypoints, self.dir
            )

        return [plan(c) for c in spec.get("initContainers", [])], [plan(c) for c in spec["containers"]]

    def _run_init(self, plan: ContainerLaunch, views: list[ContainerView], index: int) -> ContainerView:
        """Run one init container to the end (restarting it on failure unless restartPolicy is Never)."""
        view = views[index]
        while True:
            proc, view = self._spawn(plan, view)
            views[index] = view
            self._post("Pending", views, [])
            code = self._wait_one(proc, plan)
            view = self._terminated_view(plan, view, code)
            if code == 0 or self._restart_policy == "Never" or self._stop_requested.is_set():
                return view
            views[index] = view
            self._post("Pending", views, [])
            if self._stop_requested.wait(self._backoff(view.restart_count)):
                return view
            view = replace(
                view, restart_count=view.restart_count + 1, last_terminated=view.terminated, terminated=None
            )

    def _run_containers(
        self, run: PodRun, init_views: list[ContainerView], plans: list[ContainerLaunch]
    ) -> None:
        views = [ContainerView(p.name, p.image) for p in plans]
        procs: dict[int, subprocess.Popen[bytes]] = {}
        restart_at: dict[int, float] = {}
        for i, plan in enumerate(plans):
            proc, views[i] = self._spawn(plan, views[i])
            if proc is not None:
                procs[i] = proc
        self._post("Running" if procs else "Failed", init_views, views)
        while procs or restart_at:
            if self._stop_requested.wait(POLL_S):
                for i, proc in procs.items():
                    code = stop_group(proc, self._grace)
                    views[i] = self._terminated_view(plans[i], views[i], code if code is not None else -9)
                return self._finish(run, init_views, views, deleted=True)
            changed = False
            for i, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                stop_group(proc, 0)  # leftovers of the group go with their leader, as in a container
                del procs[i]
                views[i] = self._terminated_view(plans[i], views[i], code)
                changed = True
                if self._restarts(views[i]):
                    restart_at[i] = time.monotonic() + self._backoff(views[i].restart_count)
            for i, when in list(restart_at.items()):
                if time.monotonic() >= when:
                    del restart_at[i]
                    restarted = replace(
                        views[i],
                        restart_count=views[i].restart_count + 1,
                        last_terminated=views[i].terminated,
                        terminated=None,
                    )
                    proc, views[i] = self._spawn(plans[i], restarted)
                    if proc is not None:
                        procs[i] = proc
                    changed = True
            if changed and (procs or restart_at):
                self._post("Running", init_views, views)
        self._finish(run, init_views, views, deleted=False)

    def _restarts(self, view: ContainerView) -> bool:
        code = view.terminated.exit_code if view.terminated else 0
        return self._restart_policy == "Always" or (self._restart_policy == "OnFailure" and code != 0)

    @staticmethod
    def _backoff(restart_count: int) -> float:
        """Shorter than the kubelet's 10 s doubling to 5 min: tests should not wait minutes."""
        return float(min(2**restart_count, 10))

    def _spawn(
        self, plan: ContainerLaunch, view: ContainerView
    ) -> tuple[subprocess.Popen[bytes] | None, ContainerView]:
        """Start the process; a failure to exec becomes a terminated state (exit 128, StartError)."""
        cwd = plan.cwd if plan.cwd.is_dir() else self.dir / "work"
        plan.termination_log.unlink(missing_ok=True)
        plan.termination_log.touch()
        started = now()
        with plan.log_path.open("ab") as out:
            try:
                proc = subprocess.Popen(
                    list(plan.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=dict(plan.env),
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            except OSError as exc:
                message = f"failed to start {plan.argv[0]!r}: {exc.strerror or exc}"
                out.write((message + "\n").encode())
                container_id = f"faceblur-testenv://{self.uid[:8]}-{plan.name}-none"
                gone = Terminated(128, "StartError", message, started, now(), container_id)
                return None, replace(view, terminated=gone, container_id=container_id, running_since=started)
        log.info("pod %s container %s: pid %d: %s", self.name, plan.name, proc.pid, " ".join(plan.argv))
        container_id = f"faceblur-testenv://{self.uid[:8]}-{plan.name}-{proc.pid}"
        return proc, replace(view, container_id=container_id, running_since=started, terminated=None)

    def _wait_one(self, proc: subprocess.Popen[bytes] | None, plan: ContainerLaunch) -> int:
        if proc is None:
            return 128
        while True:
            if self._stop_requested.wait(POLL_S):
                code = stop_group(proc, self._grace)
                return code if code is not None else -9
            if (code := proc.poll()) is not None:
                stop_group(proc, 0)
                return code

    def _terminated_view(self, plan: ContainerLaunch, view: ContainerView, returncode: int) -> ContainerView:
        if view.terminated is not None and view.terminated.reason == "StartError":
            return view
        code = exit_code_of(returncode)
        file_text = plan.termination_log.read_text(errors="replace") if plan.termination_log.exists() else ""
        log_text = plan.log_path.read_text(errors="replace") if plan.fallback_to_logs and code != 0 else ""
        message = termination_message(file_text, log_text, plan.fallback_to_logs, code)
        started = view.running_since or now()
        return replace(
            view,
            terminated=Terminated(code, terminated_reason(code), message, started, now(), view.container_id),
        )

    def _post(self, phase: str, init_views: list[ContainerView], views: list[ContainerView]) -> None:
        if not self._gone:
            self.runner.post_status(
                self.pod, pod_status_patch(self.uid, phase, self.started, now(), init_views, views)
            )

    def _finish(
        self, run: PodRun, init_views: list[ContainerView], views: list[ContainerView], deleted: bool
    ) -> None:
        codes = [v.terminated.exit_code if v.terminated else 137 for v in [*init_views, *views]]
        phase = pod_phase(codes)
        self._post(phase, init_views, views)
        self.runner.recorder.write(
            finished(
                run,
                time.time(),
                phase,
                {v.name: c for v, c in zip([*init_views, *views], codes, strict=True)},
            )
        )
        log.info("pod %s %s (exit codes %s)", self.name, phase, codes)
        if deleted and not self._gone:
            self.runner.confirm_deletion(self.pod)

    def _finish_deleted(self, init_views: list[ContainerView], views: list[ContainerView]) -> None:
        if not self._gone:
            self._post("Failed", init_views, views)
            self.runner.confirm_deletion(self.pod)


def serve(
    api: KubeApi,
    root: Path,
    node_specs: Sequence[nodedocs.NodeSpec],
    path_prefix: str,
    entrypoints: Mapping[str, Sequence[str]] = DEFAULT_ENTRYPOINTS,
    passed_env: Sequence[str] = PASSED_ENV,
) -> None:
    """Run the pod runner in the foreground until SIGTERM or SIGINT, then kill its pods and return."""
    runner = PodRunner(api, root, node_specs, path_prefix, entrypoints, passed_env)
    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner.register_nodes()
        for target in (runner.heartbeat_forever, runner.watch_forever):
            threading.Thread(target=target, name=target.__name__, daemon=True).start()
        done.wait()
    finally:
        runner.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
