"""Faults on the session's real node, each a test, with the chart installed as users install it (the
operator as its Deployment; uninstalled with its namespace when the module is done): the operator pod
deleted mid-run, a worker container killed mid-chunk, a worker memory limit too small, an image that does
not exist, and the node's S3 unreachable for 30 s. Each prints what the FaceBlurJob showed on the way
(phase, reason, message), the pods' failures and the time it took.

Cheap on purpose: the 40-frame sample in 2 chunks. One undisturbed run is the reference the disturbed
ones are compared with, frame by frame (see assert_same_output).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chart_minio_support import InstalledRelease
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubenode import network
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.polling import wait_until
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo
from kube_support import JSON, apply, job_doc
from user_path_support import BUCKET, INPUT_KEY, NAMESPACE, install_chart

# Loaded into no node, and from a registry that does not answer (nothing listens on port 9).
MISSING_IMAGES = ("docker.io/faceblur/no-such-worker", "127.0.0.1:9/faceblur/no-such-worker")
pytestmark = pytest.mark.node

CHUNKS = 2
JOB_TIMEOUT_S = 300
OUTAGE_S = 30
MIN_PSNR_DB = 40.0  # a face left unblurred or a frame from elsewhere is far below
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
OPERATOR_PODS = "app.kubernetes.io/instance=faceblur,app.kubernetes.io/component=operator"


@pytest.fixture(scope="module")
def release(node_cluster: TestCluster, worker_images: dict[str, str], s3: S3Server) -> Iterator[str]:
    """The chart on the session's node, uninstalled with its namespace when the module is done."""
    # The administrator lets jobs name the images of the missing-image faults (chart value jobPolicy).
    allowed = ",".join(("faceblur/worker", "faceblur/worker-gpu", *MISSING_IMAGES))
    policy = f"jobPolicy.allowedImages={{{allowed}}}"
    installed = InstalledRelease(node_cluster)
    try:
        installed.use(
            "faults",
            lambda: print(f"helm install to Available: {install_chart(node_cluster, s3, policy):.1f}s"),
        )
        yield "faceblur"
    finally:
        installed.remove()


# ------------------------------------------------------------------------------------------ helpers


def fault_job(name: str, **spec: Any) -> JSON:
    """The sample in CHUNKS chunks, its output under faults/; spec's keys replace the defaults'."""
    defaults = {
        "input": {"bucket": BUCKET, "key": INPUT_KEY},
        "output": {"bucket": BUCKET, "key": f"faults/{name}.mp4"},
        "chunking": {"chunks": CHUNKS},
        "parallelism": CHUNKS,
    }
    return job_doc(name, {**defaults, **spec}, namespace=NAMESPACE)


def listed(cluster: TestCluster, kind: str, instance: str) -> list[JSON]:
    base = "/api/v1" if kind == "pods" else "/apis/batch/v1"
    found = cluster.api.get(
        f"{base}/namespaces/{NAMESPACE}/{kind}", {"labelSelector": f"app.kubernetes.io/instance={instance}"}
    )
    return list(found.get("items", []))


def container_state(pod: JSON) -> JSON:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0].get("state", {}))


def pod_failures(pods: list[JSON]) -> list[str]:
    """One line per failed pod: name, index, the kubelet's reason and exit code."""
    lines = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"]):
        if pod.get("status", {}).get("phase") == "Failed":
            ended = container_state(pod).get("terminated", {})
            index = pod["metadata"].get("annotations", {}).get(INDEX_KEY, "-")
            lines.append(
                f"{pod['metadata']['name']} (index {index}): {ended.get('reason')} {ended.get('exitCode')}"
            )
    return lines


@dataclass
class Trace:
    """A FaceBlurJob followed through the API: each (phase, reason, message) it showed, with the second
    it first showed it, and every Job uid seen under each Job name (a recreated Job has a new uid)."""

    cluster: TestCluster
    name: str
    started: float = field(default_factory=time.monotonic)
    states: list[tuple[float, str, str, str]] = field(default_factory=list)
    jobs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def poll(self) -> JSON:
        doc = self.cluster.api.get(
            f"/apis/faceblur.dev/v1alpha1/namespaces/{NAMESPACE}/faceblurjobs/{self.name}"
        )
        status: JSON = doc.get("status") or {}
        seen = (str(status.get("phase")), str(status.get("reason")), str(status.get("message")))
        if not self.states or self.states[-1][1:] != seen:
            self.states.append((round(time.monotonic() - self.started, 1), *seen))
        for job in listed(self.cluster, "jobs", self.name):
            self.jobs[job["metadata"]["name"]].add(job["metadata"]["uid"])
        return {"phase": None, **status}

    def until(self, what: str, predicate: Callable[[JSON], bool], timeout_s: float = JOB_TIMEOUT_S) -> JSON:
        def probe() -> JSON | None:
            status = self.poll()
            return status if predicate(status) else None

        return dict(wait_until(f"{self.name}: {what}", probe, timeout_s=timeout_s, interval_s=0.5))

    def finished(self) -> JSON:
        return self.until("Succeeded or Failed", lambda s: s["phase"] in ("Succeeded", "Failed"))

    def report(self) -> str:
        pods = listed(self.cluster, "pods", self.name)
        lines = [f"{self.name}: {time.monotonic() - self.started:.1f}s, {len(pods)} pods"]
        lines += [f"  +{t}s {phase}/{reason}: {message}" for t, phase, reason, message in self.states]
        lines += [f"  failed pod {line}" for line in pod_failures(pods)] or ["  no pod failed"]
        return "\n".join(lines)


def start(cluster: TestCluster, name: str, **spec: Any) -> Trace:
    trace = Trace(cluster, name)
    apply(cluster, fault_job(name, **spec))
    return trace


def download(s3: S3Server, name: str, folder: Path) -> Path:
    path = folder / f"{name}.mp4"
    s3.client().fget_object(BUCKET, f"faults/{name}.mp4", str(path))
    return path


def frame_timing(path: Path) -> list[str]:
    """Per decoded frame: stream, dts, pts, duration and size (framemd5 without the hash)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.rsplit(",", 1)[0] for line in done.stdout.splitlines() if line and line[0] != "#"]


def worst_psnr(output: Path, reference: Path) -> float:
    """The lowest per-frame PSNR (dB) of output against reference; inf when every frame is equal."""
    done = subprocess.run(
        ["ffmpeg", "-i", str(output), "-i", str(reference), "-lavfi", "psnr", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"PSNR y:\S+ u:\S+ v:\S+ average:\S+ min:(\S+)", done.stderr)
    assert found, done.stderr[-2000:]
    return float(found[-1])


def assert_same_output(output: Path, reference: Path, sample: FaceVideo) -> None:
    """The undisturbed run's frames, timing and sizes aside: every frame with the same timestamps, each
    within encoder noise of the reference's (runs of one job differ by 45-57 dB PSNR here, not bit
    for bit), and no face left sharp."""
    timing = frame_timing(reference)
    assert len(timing) == sample.frame_count
    assert frame_timing(output) == timing, "frames, timestamps or durations differ"
    psnr = worst_psnr(output, reference)
    print(f"{output.name}: worst frame {psnr:.1f} dB PSNR against the undisturbed run")
    assert psnr >= MIN_PSNR_DB, f"a frame differs from the undisturbed run's beyond encoder noise ({psnr} dB)"
    assert frames_with_a_sharp_face(sample, output, max_ratio=0.25) == []


def work_pods(cluster: TestCluster, name: str, index: int | None = None) -> list[JSON]:
    """The job's worker pods (of one index, if given), oldest first."""
    found = [
        pod
        for pod in listed(cluster, "pods", name)
        if pod["metadata"].get("labels", {}).get("faceblur.dev/stage") == "work"
        and (index is None or pod["metadata"].get("annotations", {}).get(INDEX_KEY) == str(index))
    ]
    return sorted(found, key=lambda pod: str(pod["metadata"]["creationTimestamp"]))


def host_pid(cluster: TestCluster, container_id: str) -> int:
    """The host PID of a container's main process, from the node's containerd."""
    assert cluster.node is not None
    for line in cluster.node.ctr("tasks", "ls").stdout.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid)
    raise AssertionError(f"containerd runs no task {container_id}")


def in_chunk(pid: int, index: int) -> bool:
    """The worker has its chunk's scratch files open (downloaded or being decoded, encoded): mid-chunk.
    Raises ProcessLookupError once the process is gone (the chunk finished before it could be caught)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    if not fd_dir.exists():
        raise ProcessLookupError(f"process {pid} ended before it was seen mid-chunk")
    marker = f"/faceblur-{index:06d}-"
    for fd in fd_dir.iterdir():
        try:
            if marker in os.readlink(fd):
                return True
        except OSError:
            continue
    return False


# -------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def reference(
    node_cluster: TestCluster,
    s3: S3Server,
    release: str,
    sample: FaceVideo,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The undisturbed run the disturbed ones must equal."""
    trace = start(node_cluster, "fault-reference")
    final = trace.finished()
    print(trace.report())
    assert final["phase"] == "Succeeded", trace.report()
    return download(s3, "fault-reference", tmp_path_factory.mktemp("faults-reference"))


def test_operator_pod_deleted_mid_run_comes_back_and_finishes_without_duplicate_jobs(
    node_cluster: TestCluster, s3: S3Server, sample: FaceVideo, reference: Path, tmp_path: Path
) -> None:
    name = "fault-operator"
    trace = start(node_cluster, name)
    trace.until("the work Job created", lambda s: s["phase"] == "Processing")
    (old,) = node_cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": OPERATOR_PODS})[
        "items"
    ]
    deleted = time.monotonic()
    node_cluster.kubectl("-n", NAMESPACE, "delete", "pod", old["metadata"]["name"], "--wait=false")

    def replacement_ready() -> JSON | None:
        for pod in node_cluster.api.get(
            f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": OPERATOR_PODS}
        )["items"]:
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if pod["metadata"]["uid"] != old["metadata"]["uid"] and conditions.get("Ready") == "True":
                return dict(pod)
        trace.poll()
        return None

    new = wait_until("a new operator pod Ready", replacement_ready, timeout_s=180)
    back_s = time.monotonic() - deleted
    final = trace.finished()
    print(
        f"operator pod {old['metadata']['name']} deleted, {new['metadata']['name']} Ready after {back_s:.1f}s"
    )
    print(trace.report())
    assert final["phase"] == "Succeeded", trace.report()
    assert {job: len(uids) for job, uids in trace.jobs.items()} == {
        f"{name}-split": 1,
        f"{name}-work": 1,
        f"{name}-compose": 1,
    }, "a Job was created twice (or under another name)"
    assert_same_output(download(s3, name, tmp_path), reference, sample)


def test_worker_killed_mid_chunk_is_retried_and_the_output_is_the_same(
    node_cluster: TestCluster, s3: S3Server, sample: FaceVideo, reference: Path, tmp_path: Path
) -> None:
    name, index = "fault-kill", 0

    def running_container() -> str | None:
        trace.poll()
        pod = next(iter(work_pods(node_cluster, name, index)), None)
        container_id = str(
            (pod or {}).get("status", {}).get("containerStatuses", [{}])[0].get("containerID", "")
        )
        return (
            container_id.removeprefix("containerd://") if pod and "running" in container_state(pod) else None
        )

    trace = start(node_cluster, name)
    container_id = wait_until(
        f"{name}: index {index}'s worker running", running_container, timeout_s=JOB_TIMEOUT_S
    )
    pid = host_pid(node_cluster, container_id)
    wait_until(
        f"{name}: index {index}'s worker mid-chunk",
        lambda: in_chunk(pid, index),
        timeout_s=120,
        interval_s=0.02,
    )
    assert node_cluster.node is not None
    killed = node_cluster.node.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)
    assert killed.returncode == 0, killed.stderr
    killed_at = time.monotonic() - trace.started
    final = trace.finished()
    print(f"killed the worker of index {index} (container {container_id[:12]}) at +{killed_at:.1f}s")
    print(trace.report())
    assert final["phase"] == "Succeeded", trace.report()
    attempts = work_pods(node_cluster, name, index)
    ends = sorted(
        (p["status"]["phase"], container_state(p).get("terminated", {}).get("exitCode")) for p in attempts
    )
    assert ends == [("Failed", 137), ("Succeeded", 0)], ends
    assert_same_output(download(s3, name, tmp_path), reference, sample)


def test_worker_out_of_memory_fails_the_job_with_the_limit_to_raise_after_bounded_retries(
    node_cluster: TestCluster, s3: S3Server, release: str, sample: FaceVideo
) -> None:
    """Only the limit is set, as a user lowering it would (the defaults' request is larger)."""
    name = "fault-oom"
    trace = start(
        node_cluster,
        name,
        chunking={"chunks": 1},
        parallelism=1,
        maxRetriesPerChunk=1,
        resources={"limits": {"memory": "64Mi"}},
    )
    final = trace.finished()
    print(trace.report())
    assert final["phase"] == "Failed", trace.report()
    assert "OOMKilled" in final["message"], final
    assert "spec.resources.limits.memory" in final["message"], final
    time.sleep(5)  # nothing more is started once the job has failed
    work = work_pods(node_cluster, name)
    reasons = [container_state(p).get("terminated", {}).get("reason") for p in work]
    assert reasons == ["OOMKilled", "OOMKilled"], pod_failures(work)


def test_missing_image_is_reported_instead_of_waiting_silently(
    node_cluster: TestCluster, s3: S3Server, release: str, sample: FaceVideo
) -> None:
    """Never (images loaded into the node, as here and with kind load) and IfNotPresent from a registry
    that does not answer (a local port nothing listens on: no traffic leaves the machine)."""
    never, pull = MISSING_IMAGES
    cases = {
        "fault-image-never": {"worker": f"{never}:0", "pullPolicy": "Never"},
        "fault-image-pull": {"worker": f"{pull}:0", "pullPolicy": "IfNotPresent"},
    }
    # cleanup Never: deleting them afterwards (their waiting pods hold CPU) starts no cleanup Job
    traces = {
        name: start(node_cluster, name, images=images, cleanup="Never") for name, images in cases.items()
    }
    try:
        for name, trace in traces.items():
            shown = trace.until(
                "the pull error reported", lambda s: s.get("reason") == "ImagePullFailed", 120
            )
            print(trace.report())
            assert cases[name]["worker"].split("/", 1)[1] in shown["message"], shown
    finally:
        for name in traces:
            node_cluster.kubectl("-n", NAMESPACE, "delete", "fbj", name, check=False)


def test_s3_unreachable_for_30s_the_job_still_succeeds(
    node_cluster: TestCluster, s3: S3Server, sample: FaceVideo, reference: Path, tmp_path: Path
) -> None:
    """Pods get no answer from the S3 port (packets dropped, as in a network partition) from the moment
    the work Job exists, so its pods start during the outage."""
    assert node_cluster.node is not None
    assert node_cluster.node.net is not None
    net, name = node_cluster.node.net, "fault-s3"
    port = int(s3.endpoint.rsplit(":", 1)[1])
    trace = start(node_cluster, name)
    trace.until("the work Job created", lambda s: s["phase"] == "Processing")
    with network.port_unreachable_from_pods(net, port):
        blocked_at = time.monotonic() - trace.started
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            trace.poll()
            time.sleep(1)
    final = trace.finished()
    print(f"S3 port {port} unreachable from pods from +{blocked_at:.1f}s for {OUTAGE_S}s")
    print(trace.report())
    assert final["phase"] == "Succeeded", trace.report()
    # The worker's own retries outlast the outage (5 tries, each connect waiting up to 10 s): no pod failed.
    assert pod_failures(listed(node_cluster, "pods", name)) == []
    assert_same_output(download(s3, name, tmp_path), reference, sample)
