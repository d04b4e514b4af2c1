"""The CUDA provider's memory: arenas grown by what is asked for and capped at a share of the budget."""

from __future__ import annotations

import pytest
from faceblur.detectors.providers import GPU_ARENAS, GPU_HEADROOM, GPU_MEMORY_ENV, cuda_options, gpu_budget
from faceblur.errors import ModelError


def test_each_arena_gets_its_share_of_the_budget_less_the_context() -> None:
    sixteen = 16 * 2**30
    options = cuda_options(sixteen)
    assert options["arena_extend_strategy"] == "kSameAsRequested"
    assert int(options["gpu_mem_limit"]) == (sixteen - GPU_HEADROOM) // GPU_ARENAS
    assert int(cuda_options(2**30)["gpu_mem_limit"]) == 512 * 2**20  # never below a usable arena


def test_without_a_budget_only_the_growth_is_set() -> None:
    assert cuda_options(None) == {"arena_extend_strategy": "kSameAsRequested"}


def test_the_budget_is_the_variable_s_else_the_device_s() -> None:
    assert gpu_budget({GPU_MEMORY_ENV: "10240"}) == 10 * 2**30  # a MIG 1g.10gb slice
    assert gpu_budget({}) is None  # this machine: no NVIDIA driver, so no device NVML describes
    with pytest.raises(ModelError, match=GPU_MEMORY_ENV):
        gpu_budget({GPU_MEMORY_ENV: "10 GiB"})
