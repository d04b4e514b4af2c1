"""The operator end to end on the real cluster: real Jobs, the worker image on the real node, real S3.

Jobs that must be held at a stage name a Kueue queue: their Jobs are created suspended and the
test plays Kueue (`admit`), which also checks the Kueue path. Videos are tiny (320x240, 40 frames).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_support import (
    BUCKET,
    JSON,
    OperatorProcess,
    admit,
    apply,
    example,
    get_fbj,
    job_doc,
    jobs_of,
    make_namespace,
    stage_pods,
    wait_for,
    wait_phase,
)
from faceblur_operator.naming import Stage
from faceblur_operator.scratch import quantity, scratch_bytes
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.deviceplugin import SHARED_RESOURCE
from faceblur_testenv.measure import decode_bgr, frames_with_a_sharp_face
from faceblur_testenv.podtimes import peak_concurrency, run_intervals
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary, VideoSpec

pytestmark = pytest.mark.cluster

SAMPLE = VideoSpec(frames=40, gop=10)  # astronaut, 320x240, 1.6 s, a keyframe every 10 frames
QUEUE = "test-queue"


def upload(s3: S3Server, path: Path, key: str) -> None:
    s3.client().fput_object(BUCKET, key, str(path))


def keys_under(s3: S3Server, prefix: str) -> dict[str, str]:
    """key -> ETag of every object under a prefix."""
    objects = s3.client().list_objects(BUCKET, prefix=prefix.rstrip("/") + "/", recursive=True)
    return {o.object_name: o.etag for o in objects if o.object_name is not None}


def job_prefix(doc: JSON) -> str:
    url: str = doc["status"]["intermediates"]
    return url.removeprefix(f"s3://{BUCKET}/")


def spec_for(input_key: str, output_key: str, **extra: Any) -> JSON:
    return {
        "input": {"bucket": BUCKET, "key": input_key},
        "output": {"bucket": BUCKET, "key": output_key},
        **extra,
    }


def assert_anonymized(video: FaceVideo, output: Path) -> None:
    assert frames_with_a_sharp_face(video, output, max_ratio=0.25) == []  # also checks the frame count


def owned_jobs(cluster: TestCluster, namespace: str, uid: str) -> list[str]:
    return sorted(
        j["metadata"]["name"]
        for j in jobs_of(cluster, namespace, uid)
        if j["metadata"].get("ownerReferences")
    )


@pytest.fixture
def sample(videos: VideoLibrary, s3_server: S3Server) -> FaceVideo:
    video = videos.get(SAMPLE)
    upload(s3_server, video.path, "samples/people.mp4")  # the examples' input
    return video


def test_cpu_example_succeeds_with_every_face_blurred(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo, tmp_path: Path
) -> None:
    doc = example("cpu.yaml")

    test_cluster.kubectl("apply", "-n", namespace, "-f", "manifests/examples/cpu.yaml")
    done = wait_phase(test_cluster, namespace, "people-cpu", "Succeeded")

    status = done["status"]
    assert status["progress"]["chunks"] == "4/4"
    assert status["progress"]["framesTotal"] == sample.frame_count
    assert status["progress"]["facesFound"] >= sample.frame_count
    assert status["output"] == f"s3://{BUCKET}/{doc['spec']['output']['key']}"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True", "Reconciling": "False", "Stalled": "False",  # kstatus: Current
        "Split": "True", "Processed": "True", "Complete": "True", "Verified": "True",
    }  # fmt: skip
    test_cluster.kubectl("wait", "fbj/people-cpu", "-n", namespace, "--for=condition=Ready", "--timeout=5s")
    # the residual-face check ran in every worker pod and found no face left sharp
    report_key = doc["spec"]["output"]["key"].rsplit(".", 1)[0] + ".verify.json"
    assert status["verification"]["report"] == f"s3://{BUCKET}/{report_key}"
    assert status["verification"]["framesChecked"] == len(range(0, sample.frame_count, 10))
    assert status["verification"]["residualFrames"] == 0
    report = json.loads(s3_server.client().get_object(BUCKET, report_key).read())
    assert report["passed"]
    output = tmp_path / "out.mp4"
    s3_server.client().fget_object(BUCKET, doc["spec"]["output"]["key"], str(output))
    assert_anonymized(sample, output)
    prefix = job_prefix(done)
    left = set(keys_under(s3_server, prefix))  # cleanup: OnSuccess keeps only the small records
    # job.json: the claim; publishing.json: the output compose published (a retry knows it is its own)
    records = ("job.json", "manifest.json", "publishing.json", "result.json", "verification/report.json")
    assert left <= {f"{prefix}/{name}" for name in records}

    table = test_cluster.kubectl("get", "fbj", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "FACES", "AGE"]
    assert row.split()[:4] == ["people-cpu", "Succeeded", "4/4", str(status["progress"]["facesFound"])]
    assert "finalizers" not in done["metadata"]
    assert owned_jobs(test_cluster, namespace, done["metadata"]["uid"]) == [
        "people-cpu-compose", "people-cpu-split", "people-cpu-work"
    ]  # fmt: skip
    events = test_cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=people-cpu"
    ).stdout
    for reason in ("Created", "Splitting", "Processing", "Composing", "Succeeded"):
        assert reason in events


def test_a_gpu_job_whose_pods_cannot_use_the_gpu_fails_with_gpu_unavailable(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo
) -> None:
    """The node's device plugin hands out a GPU the container cannot use (no NVIDIA runtime, no
    driver): the GPU image's onnxruntime falls back to the CPU, and the worker refuses to, naming why."""
    test_cluster.kubectl("apply", "-n", namespace, "-f", "manifests/examples/gpu/gpu.yaml")

    failed = wait_phase(test_cluster, namespace, "people-gpu", "Failed")

    status = failed["status"]
    assert status["reason"] == "GPUUnavailable"
    assert "no NVIDIA driver in the container" in status["message"]
    assert "runtimeClassName" in status["message"]
    parallelism = example("gpu/gpu.yaml")["spec"]["parallelism"]
    assert test_cluster.pods_created(namespace, "people-gpu-work") <= parallelism  # permanent: no retries
    work = json.loads(
        test_cluster.kubectl("get", "job", "people-gpu-work", "-n", namespace, "-o", "json").stdout
    )
    container = work["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["command"][container["command"].index("--execution-provider") + 1] == "cuda"
    assert {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility,video"} in container["env"]


def test_a_gpu_job_on_a_renamed_resource_allowed_the_cpu_and_the_debug_example_succeed(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo
) -> None:
    fallback = example("gpu/gpu.yaml")
    fallback["metadata"]["name"] = "people-gpu-or-cpu"
    # the node's second device plugin advertises GPUs renamed as time-slicing with renameByDefault does
    fallback["spec"]["resources"] |= {"allowCpuFallback": True, "gpuResource": SHARED_RESOURCE}
    apply(test_cluster, namespace, fallback)
    test_cluster.kubectl("apply", "-n", namespace, "-f", "manifests/examples/debug.yaml")

    gpu = wait_phase(test_cluster, namespace, "people-gpu-or-cpu", "Succeeded")
    debug = wait_phase(test_cluster, namespace, "people-debug", "Succeeded")

    assert gpu["status"]["progress"]["chunks"] == "4/4"
    assert gpu["status"]["progress"]["runtime"].startswith("CPUExecutionProvider on CPU, ")
    work = json.loads(
        test_cluster.kubectl("get", "job", "people-gpu-or-cpu-work", "-n", namespace, "-o", "json").stdout
    )
    limits = work["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert (limits.get(SHARED_RESOURCE), limits.get("nvidia.com/gpu")) == ("1", None)
    wide = test_cluster.kubectl("get", "fbj", "people-gpu-or-cpu", "-n", namespace, "-o", "wide").stdout
    assert "RUNTIME" in wide.splitlines()[0]
    assert "CPUExecutionProvider on CPU" in wide
    artefacts = debug["status"]["debug"]
    prefix = job_prefix(debug)
    kept = keys_under(s3_server, prefix)  # cleanup: Never
    assert f"{prefix}/debug/contact-sheet.png" in kept
    assert artefacts["contactSheet"].endswith("contact-sheet.png")
    assert artefacts["video"].endswith("debug.mp4")


def test_corrupt_input_fails_once_with_a_clear_reason(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, videos: VideoLibrary
) -> None:
    upload(s3_server, videos.corrupt(), "samples/corrupt.mp4")
    apply(test_cluster, namespace, job_doc("broken", spec_for("samples/corrupt.mp4", "out/broken.mp4")))

    failed = wait_phase(test_cluster, namespace, "broken", "Failed")

    status = failed["status"]
    assert status["reason"] == "InvalidInput"
    assert status["message"].startswith("split failed: ")
    assert "faceblur.dev/retry" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Failed"] == "True"
    split_runs = test_cluster.pods_created(namespace, "broken-split")
    assert split_runs == 1  # the permanent exit code failed the Job at once: no retries
    assert test_cluster.kubectl("get", "fbj", "broken", "-n", namespace).stdout.split()[-4] == "Failed"


def test_a_truncated_upload_is_named_by_its_object_key(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, videos: VideoLibrary, tmp_path: Path
) -> None:
    whole = videos.get(SAMPLE).path.read_bytes()
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(whole[: len(whole) // 3])
    upload(s3_server, truncated, "samples/trunc.mp4")
    apply(test_cluster, namespace, job_doc("trunc", spec_for("samples/trunc.mp4", "out/trunc.mp4")))

    status = wait_phase(test_cluster, namespace, "trunc", "Failed")["status"]

    assert status["reason"] == "InvalidInput"
    assert status["message"].startswith(f"split failed: cannot read s3://{BUCKET}/samples/trunc.mp4: ")
    assert "faceblur-split-" not in status["message"]  # the pod's scratch copy means nothing to the user


def test_an_upload_cut_short_fails_at_split_as_truncated_with_the_choice(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, videos: VideoLibrary
) -> None:
    """Its index first, an MP4 cut to a third still opens: split finds it truncated before any work,
    where it once passed and a chunk failed with advice that could not help."""
    upload(s3_server, videos.cut("mp4", SAMPLE), "samples/cut.mp4")
    apply(test_cluster, namespace, job_doc("cut", spec_for("samples/cut.mp4", "out/cut.mp4")))

    failed = wait_phase(test_cluster, namespace, "cut", "Failed")

    status = failed["status"]
    assert status["reason"] == "InputTruncated"
    named = f"split failed: s3://{BUCKET}/samples/cut.mp4 is truncated or damaged: "
    assert status["message"].startswith(named)
    assert "spec.input.ifTruncated: readable" in status["message"]
    assert test_cluster.pods_created(namespace, "cut-split") == 1  # permanent: no retries
    assert test_cluster.pods_created(namespace, "cut-work") == 0  # no chunk was processed


def test_a_missing_input_object_fails_at_once_without_retries(
    test_cluster: TestCluster, namespace: str
) -> None:
    started = time.monotonic()
    apply(test_cluster, namespace, job_doc("absent", spec_for("samples/absent.mp4", "out/absent.mp4")))

    failed = wait_phase(test_cluster, namespace, "absent", "Failed")
    seconds = time.monotonic() - started

    status = failed["status"]
    assert status["reason"] == "StorageError"
    assert f"s3://{BUCKET}/samples/absent.mp4" in status["message"]
    assert "upload the input there" in status["message"]
    uid = failed["metadata"]["uid"]
    wait_for("the split Job to be deleted", lambda: owned_jobs(test_cluster, namespace, uid) == [])
    split_runs = test_cluster.pods_created(namespace, "absent-split")  # its Events outlive the Job
    assert split_runs == 1, f"retried: {split_runs} split pods"
    print(f"missing input: Failed {seconds:.1f} s after the FaceBlurJob was created")


def test_failing_chunk_is_named_and_retry_redoes_only_missing_chunks(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo, tmp_path: Path
) -> None:
    # No smoothing: a chunk's worker then reads no frames of its neighbours, so only chunk 1 fails.
    spec = spec_for(
        "samples/people.mp4",
        "out/retried.mp4",
        queueName=QUEUE,
        chunking={"chunks": 4},
        parallelism=4,
        maxRetriesPerChunk=1,
        smoothing={"lookBack": 0, "lookAhead": 0},
    )
    apply(test_cluster, namespace, job_doc("flaky", spec))
    wait_for(  # the split Job waits, suspended, for Kueue (played by admit)
        "the split to be queued",
        lambda: (get_fbj(test_cluster, namespace, "flaky").get("status") or {}).get("reason") == "Queued",
    )
    admit(test_cluster, namespace, "flaky-split")
    processing = wait_phase(test_cluster, namespace, "flaky", "Processing")
    prefix = job_prefix(processing)
    manifest = json.loads(s3_server.client().get_object(BUCKET, f"{prefix}/manifest.json").read())
    chunk_key = manifest["chunks"][1]["key"]
    chunk_key = chunk_key if chunk_key.startswith(prefix) else f"{prefix}/{chunk_key}"
    original = tmp_path / "chunk1"
    s3_server.client().fget_object(BUCKET, chunk_key, str(original))
    s3_server.client().put_object(BUCKET, chunk_key, io.BytesIO(b"not a video" * 100), 1100)

    admit(test_cluster, namespace, "flaky-work")
    failed = wait_phase(test_cluster, namespace, "flaky", "Failed")

    status = failed["status"]
    assert status["failedIndexes"] == "1"
    assert "chunk 1 failed" in status["message"]
    published = {k: e for k, e in keys_under(s3_server, f"{prefix}/processed").items()}
    assert f"{prefix}/processed/000001.mkv" not in published

    s3_server.client().fput_object(BUCKET, chunk_key, str(original))  # repair the chunk, then retry
    test_cluster.kubectl("annotate", "fbj", "flaky", "-n", namespace, "faceblur.dev/retry=1")
    admit(test_cluster, namespace, "flaky-work-r1")
    composing = wait_phase(test_cluster, namespace, "flaky", "Composing")

    after = keys_under(s3_server, f"{prefix}/processed")
    assert len(after) == 4
    assert {k: after[k] for k in published} == published  # chunks published before were not redone
    assert composing["status"]["attempt"] == 1
    admit(test_cluster, namespace, "flaky-compose-r1")
    done = wait_phase(test_cluster, namespace, "flaky", "Succeeded")
    assert owned_jobs(test_cluster, namespace, done["metadata"]["uid"]) == [
        "flaky-compose-r1", "flaky-split", "flaky-work-r1"
    ]  # fmt: skip
    output = tmp_path / "out.mp4"
    s3_server.client().fget_object(BUCKET, "out/retried.mp4", str(output))
    assert len(decode_bgr(output)) == sample.frame_count


def test_operator_killed_while_processing_resumes_without_duplicates(
    test_cluster: TestCluster, operator: OperatorProcess, namespace: str, sample: FaceVideo
) -> None:
    spec = spec_for("samples/people.mp4", "out/resumed.mp4", chunking={"chunks": 4}, parallelism=1)
    apply(test_cluster, namespace, job_doc("survivor", spec))
    processing = wait_phase(test_cluster, namespace, "survivor", "Processing")
    operator.kill()
    try:
        assert get_fbj(test_cluster, namespace, "survivor")["status"]["phase"] == "Processing"
        wait_for(  # the Jobs run on without the operator
            "the worker Job to finish",
            lambda: (
                "Complete"
                in test_cluster.kubectl(
                    "get",
                    "job",
                    "survivor-work",
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.status.conditions[*].type}",
                ).stdout
            ),
            timeout_s=180,
        )
        assert get_fbj(test_cluster, namespace, "survivor")["status"]["phase"] == "Processing"
    finally:
        operator.start()

    done = wait_phase(test_cluster, namespace, "survivor", "Succeeded")

    uid = processing["metadata"]["uid"]
    assert owned_jobs(test_cluster, namespace, uid) == ["survivor-compose", "survivor-split", "survivor-work"]
    work_runs = stage_pods(test_cluster, namespace, "work")
    indexes = sorted(r["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for r in work_runs)
    assert indexes == ["0", "1", "2", "3"]  # each chunk ran once
    assert test_cluster.pods_created(namespace, "survivor-work") == 4
    assert done["status"]["progress"]["chunks"] == "4/4"


def test_deleting_a_job_removes_its_jobs_and_only_its_own_objects(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo
) -> None:
    """Under a prefix the user chose, the cleanup of a deleted job removes what the job wrote and
    keeps the user's own objects there."""
    prefix = f"projects/{namespace}"
    users_own = f"{prefix}/notes.txt"
    s3_server.client().put_object(BUCKET, users_own, io.BytesIO(b"mine"), 4)
    spec = spec_for(
        "samples/people.mp4", "out/doomed.mp4", queueName=QUEUE, chunking={"chunks": 2},
        intermediates={"prefix": prefix},
    )  # fmt: skip
    apply(test_cluster, namespace, job_doc("doomed", spec))
    admit(test_cluster, namespace, "doomed-split")
    processing = wait_phase(
        test_cluster, namespace, "doomed", "Processing"
    )  # the worker Job waits, suspended
    uid = processing["metadata"]["uid"]
    assert set(keys_under(s3_server, prefix)) > {users_own}

    test_cluster.kubectl("delete", "fbj", "doomed", "-n", namespace, "--timeout=30s")

    wait_for("the Jobs to be garbage-collected", lambda: owned_jobs(test_cluster, namespace, uid) == [])
    wait_for(
        "the job's own objects to be removed",
        lambda: set(keys_under(s3_server, prefix)) == {users_own},
        timeout_s=120,
    )
    cleanup = [j for j in jobs_of(test_cluster, namespace, uid) if not j["metadata"].get("ownerReferences")]
    assert [j["metadata"]["name"] for j in cleanup] == [f"doomed-cleanup-{uid[:8]}"]


def test_a_job_deleted_while_its_worker_runs_leaves_none_of_its_objects(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, videos: VideoLibrary
) -> None:
    """The cleanup Job waits, suspended, until the job's pods are gone: a worker still terminating
    wrote its chunk's objects after a cleanup that had already finished."""
    upload(s3_server, videos.get(VideoSpec(frames=750, gop=25)).path, f"samples/{namespace}-long.mp4")
    prefix = f"projects/{namespace}"
    users_own = f"{prefix}/notes.txt"
    s3_server.client().put_object(BUCKET, users_own, io.BytesIO(b"mine"), 4)
    spec = spec_for(
        f"samples/{namespace}-long.mp4", "out/midrun.mp4", chunking={"chunks": 1},
        intermediates={"prefix": prefix},
    )  # fmt: skip
    apply(test_cluster, namespace, job_doc("midrun", spec))
    uid = wait_phase(test_cluster, namespace, "midrun", "Processing")["metadata"]["uid"]
    wait_for(
        "the worker to run",
        lambda: any(
            s.get("state", {}).get("running")
            for p in stage_pods(test_cluster, namespace, "work")
            for s in p.get("status", {}).get("containerStatuses", [])
        ),
        timeout_s=120,
    )
    # its scratch space, requested from the node and bounded, sized from the input in split's record
    (pod,) = stage_pods(test_cluster, namespace, "work")
    size = s3_server.client().stat_object(BUCKET, f"samples/{namespace}-long.mp4").size
    expected = quantity(scratch_bytes(Stage.WORK, size, 1, False) or 0)
    assert pod["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"] == expected
    assert pod["spec"]["volumes"][0]["emptyDir"] == {"sizeLimit": expected}

    test_cluster.kubectl("delete", "fbj", "midrun", "-n", namespace, "--wait=false")

    name = f"midrun-cleanup-{uid[:8]}"
    cleanup = wait_for("the cleanup Job", lambda: [j for j in jobs_of(test_cluster, namespace, uid)
                                                   if j["metadata"]["name"] == name])[0]  # fmt: skip
    if stage_pods(test_cluster, namespace, "work"):  # the worker is still terminating
        assert cleanup["spec"]["suspend"] is True
    wait_for(
        "the worker pod to be gone", lambda: stage_pods(test_cluster, namespace, "work") == [], timeout_s=120
    )
    test_cluster.kubectl(
        "wait", f"job/{name}", "-n", namespace, "--for=condition=Complete", "--timeout=120s", timeout=150
    )
    assert set(keys_under(s3_server, prefix)) == {users_own}
    assert not any(o.object_name == "out/midrun.mp4" for o in s3_server.client().list_objects(BUCKET, "out/"))


def test_an_existing_output_fails_the_job_before_any_work_unless_it_may_be_replaced(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo
) -> None:
    key = f"out/{namespace}-taken.mp4"
    s3_server.client().put_object(BUCKET, key, io.BytesIO(b"theirs"), 6)
    apply(test_cluster, namespace, job_doc("taken", spec_for("samples/people.mp4", key)))
    failed = wait_phase(test_cluster, namespace, "taken", "Failed")
    assert failed["status"]["reason"] == "OutputExists"
    assert f"output s3://{BUCKET}/{key} exists already" in failed["status"]["message"]
    assert "spec.output.overwrite" in failed["status"]["message"]
    assert owned_jobs(test_cluster, namespace, failed["metadata"]["uid"]) == ["taken-split"]  # no work
    assert s3_server.client().get_object(BUCKET, key).read() == b"theirs"
    assert keys_under(s3_server, job_prefix(failed)) == {}  # nothing written, not even the claim

    replace = spec_for("samples/people.mp4", key, chunking={"chunks": 2})
    replace["output"]["overwrite"] = True
    apply(test_cluster, namespace, job_doc("replace", replace))
    wait_phase(test_cluster, namespace, "replace", "Succeeded")
    assert s3_server.client().stat_object(BUCKET, key).size > 6


def test_two_jobs_on_one_prefix_the_second_is_refused_and_the_first_keeps_its_objects(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, sample: FaceVideo
) -> None:
    shared = {"intermediates": {"prefix": f"shared/{namespace}"}, "cleanup": "Always"}
    first = spec_for("samples/people.mp4", "out/first.mp4", chunking={"chunks": 2}, **shared)
    apply(test_cluster, namespace, job_doc("first", {**first, "cleanup": "Never"}))
    wait_phase(test_cluster, namespace, "first", "Succeeded")
    before = keys_under(s3_server, f"shared/{namespace}")

    apply(
        test_cluster, namespace, job_doc("second", spec_for("samples/people.mp4", "out/second.mp4", **shared))
    )
    failed = wait_phase(test_cluster, namespace, "second", "Failed")

    assert failed["status"]["reason"] == "PrefixInUse"
    assert (
        f"s3://{BUCKET}/shared/{namespace}: it holds the objects of another job"
        in failed["status"]["message"]
    )
    cleanup = wait_for(
        "the second job's cleanup Job",
        lambda: (get_fbj(test_cluster, namespace, "second")["status"].get("jobs") or {}).get("cleanup"),
    )
    test_cluster.kubectl(
        "wait", f"job/{cleanup}", "-n", namespace, "--for=condition=Complete", "--timeout=120s", timeout=150
    )
    assert keys_under(s3_server, f"shared/{namespace}") == before  # the first job's objects, untouched
    assert s3_server.client().stat_object(BUCKET, "out/first.mp4").size


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"input": {"bucket": BUCKET}}, "input needs either url, or both bucket and key"),
        ({"input": {"url": "https://example.com/v.mp4"}}, "output.bucket and output.key are required"),
        (
            {"input": {"bucket": BUCKET, "key": "k"}, "detector": {"threshold": 2}},
            "should be less than or equal to 1",
        ),
        (
            {"input": {"bucket": BUCKET, "key": "k"}, "anonymization": {"method": "pixelate"}},
            'supported values: "blur"',
        ),
        ({"input": {"bucket": BUCKET, "key": "k"}, "accessKey": "AKIA"}, 'unknown field "spec.accessKey"'),
        (
            {"input": {"bucket": BUCKET, "key": "k"}, "resources": {"gpus": -1}},
            "should be greater than or equal to 0",
        ),
    ],
    ids=["no-key", "url-without-output", "threshold", "method", "keys-in-spec", "gpus"],
)
def test_invalid_spec_is_refused_with_a_readable_message(
    test_cluster: TestCluster, namespace: str, spec: JSON, message: str
) -> None:
    done = test_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(job_doc("bad", spec)), check=False
    )
    assert done.returncode != 0
    assert message in done.stderr


def test_spec_is_immutable_from_the_start(test_cluster: TestCluster, namespace: str) -> None:
    """Refused before the operator wrote any status too: it creates Jobs before its first status
    write, so an edit in that window would have run with the Jobs' old arguments."""
    doc = job_doc("fixed", spec_for("samples/people.mp4", "out/x.mp4", queueName=QUEUE))
    patch = json.dumps({"spec": {"parallelism": 9}})
    apply(test_cluster, namespace, doc)
    done = test_cluster.kubectl(
        "patch", "fbj", "fixed", "-n", namespace, "--type=merge", "-p", patch, check=False
    )
    assert done.returncode != 0
    assert "spec is immutable: delete and recreate the FaceBlurJob" in done.stderr
    wait_for("a phase", lambda: (get_fbj(test_cluster, namespace, "fixed").get("status") or {}).get("phase"))
    assert get_fbj(test_cluster, namespace, "fixed")["spec"]["parallelism"] == doc["spec"].get(
        "parallelism", 4
    )
    test_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))  # the same spec: fine


def test_three_jobs_at_once_all_succeed(
    test_cluster: TestCluster, s3_server: S3Server, operator: OperatorProcess, namespace: str,
    sample: FaceVideo, tmp_path: Path,
) -> None:  # fmt: skip
    other = make_namespace(test_cluster, s3_server, f"{namespace}-b"[:63])
    jobs = [(namespace, "one"), (namespace, "two"), (other, "three")]  # two namespaces, one operator
    for ns, name in jobs:
        spec = spec_for("samples/people.mp4", f"out/{name}.mp4", chunking={"chunks": 2}, parallelism=2)
        apply(test_cluster, ns, job_doc(name, spec))

    for ns, name in jobs:
        wait_phase(test_cluster, ns, name, "Succeeded", timeout_s=300)
    test_cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)

    for _, name in jobs:
        output = tmp_path / f"{name}.mp4"
        s3_server.client().fget_object(BUCKET, f"out/{name}.mp4", str(output))
        assert len(decode_bgr(output)) == sample.frame_count
    work_runs = stage_pods(test_cluster, namespace, "work")
    assert peak_concurrency(run_intervals(work_runs)) > 1
    metrics = operator.metrics()
    assert 'faceblur_stage_duration_seconds_count{stage="work"}' in metrics
    assert 'faceblur_jobs_finished_total{phase="Succeeded",reason="Succeeded"}' in metrics
    succeeded = next(
        line for line in metrics.splitlines() if line.startswith('faceblur_jobs{phase="Succeeded"}')
    )
    assert float(succeeded.split()[-1]) >= 3
