"""CenterFace compiled by OpenVINO: bfloat16 on CPUs that compute it natively, where it runs about 2x
faster than onnxruntime's float32 (a 960x544 frame on one core: 45 against 80 ms with AMX on Intel
Sapphire Rapids, 28 against 57 ms with AVX-512 BF16 on AMD Zen 5).

OpenVINO compiles a network for one input shape; the detector's calls take a few (a whole batch
and a remainder), so each shape is compiled on first use and kept. A compiled network runs one
inference at a time, whichever thread calls it (measured: two threads on one network make 30
inferences a second, one thread alone 33, two threads on a network each 60), so a session keeps up
to `networks` of them per shape and hands each calling thread (a detection lane) the least used;
each thread gets its own inference requests (they are not thread-safe) and gives its networks back
when it ends (a worker's next chunk has new lanes). Where the lanes share one network they take
turns at it while each prepares its frames and decodes its outputs (`ThreadPlan.networks`: how
many a worker's lanes get). The class answers the part of onnxruntime's InferenceSession API the
CenterFace detector uses, so one detector class serves both runtimes.
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from faceblur.errors import ModelError, reason

OPENVINO = "OpenVINO"  # the provider name this worker logs and plans threads by


@dataclass(frozen=True)
class Port:
    """An input's or output's name, as onnxruntime's NodeArg has it."""

    name: str


def openvino_installed() -> bool:
    """Without importing it: 0.4 s and its libraries, which a worker running onnxruntime would pay."""
    return importlib.util.find_spec("openvino") is not None


@cache
def openvino_runs_bf16() -> bool:
    """Whether OpenVINO's CPU plugin defaults to bfloat16 here: it does where the CPU computes it
    natively (AMX, AVX-512 BF16), which is where it beats onnxruntime's float32; elsewhere it runs
    float32 and is slower than onnxruntime (163 against 129 ms a frame on AMD Zen 3)."""
    if not openvino_installed():
        return False
    import openvino

    return bool(_core().get_property("CPU", "INFERENCE_PRECISION_HINT") == openvino.Type.bf16)


@cache
def _core() -> Any:
    import openvino

    return openvino.Core()


@dataclass(eq=False)
class _Network:
    """One compiled network for one input shape."""

    compiled: Any
    holders: int = 0  # threads that infer on it now


class OpenVinoSession:
    def __init__(self, model: Path, threads: int | None, networks: int = 1) -> None:
        self._config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # Pinning would tie every lane's inference thread to the cores OpenVINO picks,
            # under the decoder and x264 that share them.
            "ENABLE_CPU_PINNING": False,
        }
        if threads is not None:  # checked by the caller (providers.checked_threads)
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._path = model
        try:
            self._model = _core().read_model(str(model))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line texts
            raise ModelError(f"cannot load model {model}: {reason(exc)}") from exc
        self._inputs = [Port(port.get_any_name()) for port in self._model.inputs]
        self._outputs = [Port(port.get_any_name()) for port in self._model.outputs]
        self._output_index = {port.name: i for i, port in enumerate(self._outputs)}
        self._networks = max(1, networks)
        self._pools: dict[tuple[int, ...], list[_Network]] = {}  # by input shape
        self._lock = threading.Lock()
        self._threads = threading.local()

    def get_inputs(self) -> list[Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [OPENVINO]

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]
    ) -> list[np.ndarray]:
        (blob,) = input_feed.values()
        request = self._request(tuple(blob.shape))
        results = request.infer({0: blob})
        wanted = output_names or list(self._output_index)
        return [results[self._output_index[name]] for name in wanted]

    def _request(self, shape: tuple[int, ...]) -> Any:
        lease: _Lease | None = getattr(self._threads, "lease", None)
        if lease is None:
            lease = self._threads.lease = _Lease(self._lock)
        if shape not in lease.requests:
            lease.hold(shape, self._take(shape))
        return lease.requests[shape]

    def _take(self, shape: tuple[int, ...]) -> _Network:
        """The shape's least used network, a new one while each is in use and fewer than allowed."""
        with self._lock:  # compiling (0.2 s) happens once per network and process
            pool = self._pools.setdefault(shape, [])
            network = min(pool, key=lambda n: n.holders, default=None)
            if network is None or (network.holders and len(pool) < self._networks):
                network = _Network(self._compile(shape))
                pool.append(network)
            network.holders += 1
            return network

    def _compile(self, shape: tuple[int, ...]) -> Any:
        model = self._model.clone()
        try:
            model.reshape({model.inputs[0]: list(shape)})
            return _core().compile_model(model, "CPU", self._config)
        except Exception as exc:  # a model this detector's input does not fit
            raise ModelError(f"OpenVINO cannot run {self._path} on {shape} input: {reason(exc)}") from exc


class _Lease:
    """One thread's inference requests and the networks they run on, given back when the thread
    ends (its thread-local lease is then collected)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.requests: dict[tuple[int, ...], Any] = {}
        self._networks: list[_Network] = []
        weakref.finalize(self, _give_back, self._networks, lock)

    def hold(self, shape: tuple[int, ...], network: _Network) -> None:
        self._networks.append(network)
        self.requests[shape] = network.compiled.create_infer_request()


def _give_back(networks: list[_Network], lock: threading.Lock) -> None:
    with lock:
        for network in networks:
            network.holders -= 1
