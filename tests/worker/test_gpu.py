"""Why a GPU job cannot use its GPU, in the words of whoever can fix it: each cause, first the one
that hides the others (an image without CUDA says nothing about the driver)."""

from __future__ import annotations

import pytest
from faceblur.detectors.gpu import MIN_DRIVER_MAJOR, GpuFacts, gpu_facts, gpu_problem

WORKING = GpuFacts(
    cuda_provider=True,
    driver_error=None,
    driver="580.65.06",
    devices=("NVIDIA L4, 22.5 GiB",),
    visible_devices="0",
)


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        (GpuFacts(cuda_provider=False, driver_error="NVML Shared Library Not Found"), "the GPU worker image"),
        (GpuFacts(cuda_provider=True, driver_error="NVML Shared Library Not Found"), "runtimeClassName"),
        (
            GpuFacts(True, None, "580.65.06", (), "void"),
            "no GPU visible in the container (NVIDIA_VISIBLE_DEVICES=void)",
        ),
        (
            GpuFacts(True, None, "535.183.01", WORKING.devices, "0"),
            "driver 535.183.01 is older than CUDA 13 needs (R580",
        ),
        (
            GpuFacts(
                True, None, "580.65.06", WORKING.devices, "0", "libcudnn.so.9: cannot open shared object file"
            ),
            "cannot load on NVIDIA L4, 22.5 GiB: libcudnn.so.9",
        ),
        (WORKING, "did not start CUDA on NVIDIA L4"),
    ],
)
def test_each_cause_is_named(facts: GpuFacts, words: str) -> None:
    assert words in gpu_problem(facts)


def test_the_driver_bound_is_cuda_13s() -> None:
    assert MIN_DRIVER_MAJOR == 580
    assert "older" not in gpu_problem(WORKING)


def test_this_machine_has_no_nvidia_driver() -> None:
    """The real library, asked here: no driver, so the facts say so and nothing is guessed."""
    facts = gpu_facts(cuda_provider=True)
    assert facts.driver_error is not None
    assert "runtimeClassName" in gpu_problem(facts)
