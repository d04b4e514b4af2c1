"""The worker's thread budget: who gets how many threads, and how many cores a pod may use."""

from __future__ import annotations

from pathlib import Path

import pytest
from faceblur.process.threadplan import (
    MAX_LANES,
    Batching,
    available_cores,
    cgroup_quota,
    plan_pod,
    plan_threads,
    pod_cores,
    quota_cores,
)
from faceblur_contract.pods import CPU_LIMIT_ENV, CPU_REQUEST_ENV, pipelines_for


def test_two_cores_detect_in_two_single_threaded_lanes_and_nothing_else_threads() -> None:
    plan = plan_threads(2)
    assert (plan.lanes, plan.intra_op, plan.decoder, plan.encoder) == (2, 1, 1, 1)


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 8, 16, 64])
def test_every_library_gets_a_thread_and_the_lanes_use_the_budget(budget: int) -> None:
    plan = plan_threads(budget)
    assert plan.lanes == min(budget, MAX_LANES)
    assert budget - plan.lanes < plan.lanes * plan.intra_op <= budget
    assert plan.decoder >= 1
    assert 1 <= plan.encoder <= max(1, budget // 2)


def test_larger_budgets_give_x264_threads_before_its_thread_becomes_the_limit() -> None:
    assert plan_threads(3).encoder == 1
    assert plan_threads(4).encoder >= 2
    assert plan_threads(16).encoder > plan_threads(4).encoder


def test_on_a_gpu_two_lanes_feed_the_device_whole_batches() -> None:
    assert plan_threads(16, on_gpu=True).lanes == 2
    assert plan_threads(1, on_gpu=True).lanes == 1
    assert plan_threads(16, on_gpu=True).lane_batch(8) == 8


@pytest.mark.parametrize(("budget", "networks"), [(1, 1), (2, 1), (3, 2), (4, 3), (16, 3)])
def test_openvino_lanes_get_a_network_each_but_one_so_x264_keeps_a_core(budget: int, networks: int) -> None:
    assert plan_threads(budget).networks == networks


@pytest.mark.parametrize(
    ("budget", "batch", "per_lane"), [(1, 8, 8), (2, 8, 4), (3, 8, 3), (4, 1, 1), (16, 8, 2)]
)
def test_on_a_cpu_the_lanes_share_a_batch_out(budget: int, batch: int, per_lane: int) -> None:
    assert plan_threads(budget).lane_batch(batch) == per_lane


@pytest.mark.parametrize(
    ("text", "cores"),
    [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1), ("junk", None)],
)
def test_a_cgroup_quota_rounds_up_to_whole_cores(text: str, cores: int | None) -> None:
    assert quota_cores(text) == cores


def test_available_cores_is_capped_by_the_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert available_cores(cpu_max) == 1
    assert available_cores(tmp_path / "absent") >= 1


def test_the_check_of_the_output_goes_frame_by_frame_on_a_cpu_and_in_batches_on_a_gpu() -> None:
    assert plan_threads(2).check_batch(8) == 1
    assert plan_threads(16, on_gpu=True).check_batch(8) == 8


def test_a_cgroup_v1_quota_counts_too(tmp_path: Path) -> None:
    v1 = tmp_path / "cpu"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path / "no-cpu.max", v1) == 2
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no quota"
    assert cgroup_quota(tmp_path / "no-cpu.max", v1) is None


def test_a_pod_s_cores_are_its_limit_else_its_request_else_its_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    v1 = tmp_path / "v1"
    assert pod_cores({CPU_LIMIT_ENV: "1000", CPU_REQUEST_ENV: "500"}, cpu_max, v1) == 1
    assert pod_cores({CPU_REQUEST_ENV: "1", CPU_LIMIT_ENV: ""}, cpu_max, v1) == 1  # 1m: at least a core
    assert pod_cores({}, cpu_max, v1) == 1
    assert pod_cores({CPU_REQUEST_ENV: "64000000"}, cpu_max, v1) == available_cores(tmp_path / "none", v1)


def test_pipelines_follow_the_cores_and_share_them() -> None:
    assert pipelines_for(2, on_gpu=False) == 2
    assert pipelines_for(16, on_gpu=True) == 10
    assert pipelines_for(1, on_gpu=True) == pipelines_for(None, on_gpu=False) == 1
    two = plan_pod(2, on_gpu=False, batch_size=8)
    assert (two.pipelines, two.per_pipeline.lanes, two.per_pipeline.intra_op) == (2, 1, 1)
    assert two.batching == Batching(max_batch=1, max_wait_s=0.0, runners=2)  # CPU: every call alone
    assert two.networks == 1
    assert plan_pod(2, on_gpu=False, batch_size=8, pipelines=1).per_pipeline == plan_threads(2)
    assert plan_pod(8, on_gpu=False, batch_size=8, most=3).pipelines == 3  # no more than the chunks
    gpu = plan_pod(16, on_gpu=True, batch_size=32)
    assert gpu.pipelines == 10
    assert gpu.per_pipeline.on_gpu
    assert gpu.batching.max_batch == 32
    assert gpu.batching.runners == 2
    assert gpu.verifier_runners == 1
    assert gpu.batching.max_pixels == 32 * 960 * 544  # a native-size detector gets fewer frames a call
    # each of the 10 pipelines sends its share: a batch of 32 gathers frames of several
    assert (gpu.per_pipeline.lane_batch(32), gpu.per_pipeline.check_batch(32)) == (4, 4)
    assert plan_pod(16, on_gpu=True, batch_size=32, pipelines=1).per_pipeline.lane_batch(32) == 32
