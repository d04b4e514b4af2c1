"""The GPU this container can use: a description for the record, and why a GPU job cannot use one.

A job that asked for a GPU and got the CPU is the failure nobody notices (the output is the same,
only slower and dearer), so the worker names the cause instead: the image, the container runtime,
the driver or a library. The facts come from NVIDIA's management library (nvidia-ml-py), which the
NVIDIA container runtime mounts beside the device, and from the linker; `gpu_problem` decides.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

# onnxruntime-gpu 1.31 of the GPU image is built for CUDA 13, whose driver is R580 or newer.
MIN_DRIVER_MAJOR = 580
CUDA_PROVIDER_LIBRARY = "libonnxruntime_providers_cuda.so"


@dataclass(frozen=True)
class GpuFacts:
    cuda_provider: bool  # this onnxruntime offers CUDAExecutionProvider (onnxruntime-gpu)
    driver_error: str | None  # why NVIDIA's management library could not start; None: it did
    driver: str | None = None  # e.g. "580.65.06"
    devices: tuple[str, ...] = ()  # e.g. ("NVIDIA L4, 22.5 GiB",)
    visible_devices: str | None = None  # NVIDIA_VISIBLE_DEVICES, as the device plugin set it
    library_error: str | None = None  # why onnxruntime's CUDA provider library does not load


def gpu_problem(facts: GpuFacts) -> str:
    """Why a GPU cannot run this job's inference, in the terms of whoever can fix it."""
    if not facts.cuda_provider:
        return (
            "this image's onnxruntime has no CUDA provider (it is not the GPU worker image):"
            " run GPU jobs with the GPU image (chart value images.gpuWorker)"
        )
    if facts.driver_error is not None:
        return (
            f"no NVIDIA driver in the container ({facts.driver_error}): the pod did not run under the"
            " NVIDIA container runtime; set spec.placement.runtimeClassName (e.g. nvidia) or install"
            " the NVIDIA GPU operator or container toolkit on the node"
        )
    if not facts.devices:
        return (
            f"no GPU visible in the container (NVIDIA_VISIBLE_DEVICES={facts.visible_devices or 'unset'}):"
            " is runtimeClassName set, and did the device plugin allocate one?"
        )
    major = _major(facts.driver)
    if major is not None and major < MIN_DRIVER_MAJOR:
        return (
            f"driver {facts.driver} is older than CUDA 13 needs (R{MIN_DRIVER_MAJOR} or newer): upgrade"
            " the node's driver, or keep GPU jobs off such nodes (spec.placement.nodeSelector)"
        )
    if facts.library_error is not None:
        return f"onnxruntime's CUDA provider cannot load on {facts.devices[0]}: {facts.library_error}"
    return f"onnxruntime did not start CUDA on {facts.devices[0]} (driver {facts.driver}); see the pod's log"


def gpu_facts(cuda_provider: bool) -> GpuFacts:
    """What this container offers, read through NVML (nvidia-ml-py) and the dynamic linker."""
    import pynvml

    visible = os.environ.get("NVIDIA_VISIBLE_DEVICES")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuFacts(cuda_provider, driver_error=str(exc), visible_devices=visible)
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        devices = tuple(
            _describe(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())
        )
    finally:
        pynvml.nvmlShutdown()
    library_error = _library_error() if cuda_provider else None
    return GpuFacts(cuda_provider, None, driver, devices, visible, library_error)


def device_description(index: int = 0) -> str | None:
    """The GPU onnxruntime's device `index` is, e.g. "NVIDIA L4, 22.5 GiB"; None without NVML."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        return _describe(pynvml.nvmlDeviceGetHandleByIndex(index))
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()


def device_memory(index: int = 0) -> int | None:
    """Bytes of memory of GPU `index` as NVML sees it (a MIG slice's parent: the whole GPU); None without."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).total)
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()


def _describe(handle: object) -> str:
    import pynvml

    name = pynvml.nvmlDeviceGetName(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
    return f"{name.decode() if isinstance(name, bytes) else name}, {memory:.1f} GiB"


def _library_error() -> str | None:
    """What the linker says of onnxruntime's CUDA provider library: it names a missing cuDNN or
    cuBLAS where onnxruntime only logs that it fell back to the CPU."""
    import onnxruntime

    library = Path(onnxruntime.__file__).parent / "capi" / CUDA_PROVIDER_LIBRARY
    if not library.is_file():
        return f"{CUDA_PROVIDER_LIBRARY} is not installed"
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return str(exc).replace(f"{library}: ", "")
    return None


def _major(version: str | None) -> int | None:
    head = (version or "").split(".")[0]
    return int(head) if head.isdigit() else None
