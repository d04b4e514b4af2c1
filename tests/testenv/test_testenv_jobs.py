"""Jobs run to the end through the real job controller, the real scheduler and the real node: what the
operator relies on (Indexed Jobs, per-index backoff, pod failure policies, termination messages, GPU
requests, the pod's environment and service account), shown with busybox pods and the worker image."""

from __future__ import annotations

import pytest
from faceblur_testenv.cluster import REAL_NODE_NAME, TestCluster
from faceblur_testenv.podtimes import peak_concurrency, run_intervals
from faceblur_testenv.polling import wait_until
from kube_support import JSON, apply, bare_pod, container, get, wait_pod_phase
from testenv_support import (
    WORKER_IMAGE,
    condition,
    config_map,
    indexed_job,
    pods,
    secret,
    wait_job,
)

pytestmark = pytest.mark.cluster

INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def job_pods(cluster: TestCluster, namespace: str, job: str) -> list[JSON]:
    return pods(cluster, namespace, f"job-name={job}")


def exit_code(pod: JSON) -> int:
    return int(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"])


def test_indexed_job_completes_every_index(test_cluster: TestCluster, namespace: str) -> None:
    command = ["sh", "-c", 'echo "index $JOB_COMPLETION_INDEX"; sleep 2']
    apply(test_cluster, indexed_job(namespace, "three", command, completions=3, parallelism=2))

    job = wait_job(test_cluster, namespace, "three", "Complete")

    assert job["status"]["completedIndexes"] == "0-2"
    assert job["status"]["succeeded"] == 3
    runs = job_pods(test_cluster, namespace, "three")
    assert len(runs) == 3
    assert test_cluster.pods_created(namespace, "three") == 3
    assert peak_concurrency(run_intervals(runs)) <= 2
    logs = {test_cluster.pod_log(namespace, run["metadata"]["name"]).strip() for run in runs}
    assert logs == {"index 0", "index 1", "index 2"}


def test_index_failing_past_its_backoff_limit_fails_the_job(
    test_cluster: TestCluster, namespace: str
) -> None:
    command = ["sh", "-c", '[ "$JOB_COMPLETION_INDEX" != 1 ]']
    apply(
        test_cluster,
        indexed_job(namespace, "bad-one", command, completions=3, parallelism=3, backoffLimitPerIndex=1),
    )

    job = wait_job(test_cluster, namespace, "bad-one", "Failed", timeout_s=120)

    assert condition(job, "Failed")["reason"] == "FailedIndexes"  # type: ignore[index]
    assert job["status"]["failedIndexes"] == "1"
    assert job["status"]["completedIndexes"] == "0,2"
    runs = job_pods(test_cluster, namespace, "bad-one")
    index_one = [r for r in runs if r["metadata"]["labels"][INDEX_LABEL] == "1"]
    assert len(index_one) == 2  # the first try and one retry
    assert all(exit_code(r) == 1 and r["status"]["phase"] == "Failed" for r in index_one)


def test_pod_failure_policy_reads_the_exit_code(test_cluster: TestCluster, namespace: str) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]}
    command = ["sh", "-c", 'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exit 3; fi; sleep 30']
    apply(
        test_cluster,
        indexed_job(
            namespace,
            "fast-fail",
            command,
            completions=2,
            parallelism=2,
            backoffLimitPerIndex=5,
            podFailurePolicy=policy,
        ),
    )

    job = wait_job(test_cluster, namespace, "fast-fail", "Failed")

    assert condition(job, "Failed")["reason"] == "PodFailurePolicy"  # type: ignore[index]
    # The job controller deletes the still-running pod; the kubelet stops its container.
    wait_until(
        "the other pod's container to be stopped",
        lambda: all(
            p["status"]["phase"] != "Running" for p in job_pods(test_cluster, namespace, "fast-fail")
        ),
    )
    stopped = test_cluster.events(namespace, {"reason": "Killing", "involvedObject.kind": "Pod"})
    assert stopped, "no container was stopped"


def test_gpu_requests_bound_how_many_pods_run_at_once(test_cluster: TestCluster, namespace: str) -> None:
    allocatable = test_cluster.api.get(f"/api/v1/nodes/{REAL_NODE_NAME}")["status"]["allocatable"]
    gpus = int(allocatable.get("nvidia.com/gpu", "0"))
    if gpus == 0:
        pytest.skip("the node advertises no nvidia.com/gpu")
    pod_spec = {"containers": [container(["sleep", "3"], resources={"limits": {"nvidia.com/gpu": "1"}})]}
    total = gpus + 2
    apply(
        test_cluster,
        indexed_job(namespace, "gpu", [], completions=total, parallelism=total, pod_spec=pod_spec),
    )

    wait_job(test_cluster, namespace, "gpu", "Complete", timeout_s=120)

    runs = job_pods(test_cluster, namespace, "gpu")
    assert len(runs) == total
    assert peak_concurrency(run_intervals(runs)) == gpus


def test_termination_message_comes_from_the_termination_log(
    test_cluster: TestCluster, namespace: str
) -> None:
    script = """printf '{"stage": "x"}' > /dev/termination-log; exit 4"""
    apply(test_cluster, bare_pod(namespace, "msg", container(["sh", "-c", script])))

    pod = wait_pod_phase(test_cluster, namespace, "msg", ("Failed",))

    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 4
    assert terminated["reason"] == "Error"
    assert terminated["message"] == '{"stage": "x"}'
    assert terminated["finishedAt"] >= terminated["startedAt"]


def test_fallback_to_logs_on_error_uses_the_log_tail(test_cluster: TestCluster, namespace: str) -> None:
    command = ["sh", "-c", "echo first; echo 'last words' >&2; exit 2"]
    policy = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    apply(test_cluster, bare_pod(namespace, "fallback", container(command, **policy)))

    pod = wait_pod_phase(test_cluster, namespace, "fallback", ("Failed",))

    # The kubelet's message is the container's log tail: both streams, in the order containerd read
    # its two pipes (not always the order written: a cold run got stderr's line first).
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert sorted(message.splitlines()) == ["first", "last words"]
    assert sorted(test_cluster.pod_log(namespace, "fallback").splitlines()) == ["first", "last words"]


def test_environment_follows_the_pod_spec(test_cluster: TestCluster, namespace: str) -> None:
    apply(
        test_cluster,
        secret(namespace, "creds", {"accessKey": "AK"}),
        config_map(namespace, "settings", {"thresh": "0.4"}),
    )
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "PHRASE", "value": "$(GREETING) world"},
        {"name": "ACCESS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accessKey"}}},
        {"name": "THRESH", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "thresh"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
    ]
    command = ["sh", "-c", 'echo "$PHRASE|$ACCESS|$THRESH|$POD|$NOTE|$0"', "$(GREETING)"]
    pod = bare_pod(namespace, "env", container(command, env=env))
    pod["metadata"]["annotations"] = {"note": "annotated"}
    apply(test_cluster, pod)

    wait_pod_phase(test_cluster, namespace, "env", ("Succeeded",))

    assert test_cluster.pod_log(namespace, "env") == "hello world|AK|0.4|env|annotated|hello\n"


def test_missing_secret_keeps_the_pod_waiting(test_cluster: TestCluster, namespace: str) -> None:
    env = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    apply(test_cluster, bare_pod(namespace, "waits", container(["true"], env=env)))

    def waiting_reason() -> str | None:
        pod = get(test_cluster, f"/api/v1/namespaces/{namespace}/pods/waits")
        statuses = (pod or {}).get("status", {}).get("containerStatuses", [])
        return statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None

    # The kubelet shows ContainerCreating first, then the config error it retries on.
    wait_until("CreateContainerConfigError", lambda: waiting_reason() == "CreateContainerConfigError")
    apply(test_cluster, secret(namespace, "absent", {"k": "v"}))
    wait_pod_phase(test_cluster, namespace, "waits", ("Succeeded",))


def test_deleting_a_running_pod_stops_its_container(test_cluster: TestCluster, namespace: str) -> None:
    script = "trap 'exit 143' TERM; sleep 300 & wait"  # PID 1 gets no default SIGTERM handler
    apply(
        test_cluster,
        bare_pod(namespace, "sleeper", container(["sh", "-c", script]), terminationGracePeriodSeconds=30),
    )
    wait_pod_phase(test_cluster, namespace, "sleeper", ("Running",))

    test_cluster.kubectl("-n", namespace, "delete", "pod", "sleeper", "--timeout=25s")  # < the grace period

    assert pods(test_cluster, namespace) == []  # gone before the grace ran out: SIGTERM reached it
    stopped = test_cluster.events(namespace, {"involvedObject.name": "sleeper", "reason": "Killing"})
    assert [event["message"] for event in stopped] == ["Stopping container main"]


def test_init_container_runs_first_and_shares_an_empty_dir(test_cluster: TestCluster, namespace: str) -> None:
    mounts = [{"name": "shared", "mountPath": "/shared"}]
    env = [{"name": "SHARED", "value": "/shared"}]
    prepare = container(
        ["sh", "-c", 'echo prepared > "$SHARED/note"'], name="prepare", env=env, volumeMounts=mounts
    )
    main = container(["cat", "/shared/note"], volumeMounts=mounts)
    pod = bare_pod(
        namespace, "init", main, initContainers=[prepare], volumes=[{"name": "shared", "emptyDir": {}}]
    )
    apply(test_cluster, pod)

    done = wait_pod_phase(test_cluster, namespace, "init", ("Succeeded", "Failed"))

    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "prepared" in test_cluster.pod_log(namespace, "init")


def test_on_failure_restarts_the_container_in_place(test_cluster: TestCluster, namespace: str) -> None:
    script = (
        'if [ -e "$D/tried" ]; then echo second; sleep 4; exit 0; fi; touch "$D/tried"; echo first; exit 1'
    )
    main = container(
        ["sh", "-c", script],
        env=[{"name": "D", "value": "/scratch"}],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    pod = bare_pod(
        namespace, "again", main, restartPolicy="OnFailure", volumes=[{"name": "scratch", "emptyDir": {}}]
    )
    apply(test_cluster, pod)

    def restarted() -> JSON | None:  # while the second run lives: the kubelet keeps one dead container
        found = get(test_cluster, f"/api/v1/namespaces/{namespace}/pods/again") or {}
        statuses = found.get("status", {}).get("containerStatuses", [])
        return (
            statuses[0]
            if statuses and "running" in statuses[0]["state"] and statuses[0]["restartCount"]
            else None
        )

    status = wait_until("the container restarted", restarted, timeout_s=60)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert test_cluster.pod_log(namespace, "again", previous=True) == "first\n"
    done = wait_pod_phase(test_cluster, namespace, "again", ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["restartCount"] == 1
    assert test_cluster.pod_log(namespace, "again") == "second\n"


@pytest.mark.usefixtures("worker_images")
def test_pods_speak_as_their_service_account(test_cluster: TestCluster, namespace: str) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "read-config", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "reader", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-config"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "reader", "namespace": namespace},
    }
    apply(test_cluster, account, role, binding, config_map(namespace, "settings", {"k": "v"}))
    script = (
        "import sys\n"
        "from kubernetes import client, config\n"
        "config.load_incluster_config()\n"
        "api = client.CoreV1Api()\n"
        f"print(api.read_namespaced_config_map('settings', '{namespace}').data)\n"
        "try:\n"
        f"    api.list_namespaced_secret('{namespace}')\n"
        "except client.ApiException as exc:\n"
        "    print('secrets:', exc.status)\n"
    )
    apply(
        test_cluster,
        bare_pod(
            namespace,
            "sa",
            container(["python", "-c", script], image=WORKER_IMAGE),  # the operator's Python client
            serviceAccountName="reader",
        ),
    )

    wait_pod_phase(test_cluster, namespace, "sa", ("Succeeded", "Failed"))

    assert test_cluster.pod_log(namespace, "sa") == "{'k': 'v'}\nsecrets: 403\n"
