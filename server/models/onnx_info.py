"""What an ONNX file says about its input and output, read with ONNX Runtime.

onnx itself is not a runtime dependency, so the shapes come from a CPU
InferenceSession. Results are cached by (path, size, mtime) because the
model manager rescans the repository on every poll.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelConfigError

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


@dataclass(frozen=True)
class OnnxInfo:
    path: Path
    input_name: str
    # Dims as ONNX Runtime reports them: int when fixed, None/str when symbolic.
    input_shape: tuple[int | str | None, ...]
    input_dtype: str  # "float32" | "float16"
    output_shape: tuple[int | str | None, ...]
    # Layout guessed from the shape: "NCHW", "NHWC" or None when ambiguous.
    layout: str | None
    channels: int | None
    height: int | None
    width: int | None
    batch: int | None  # fixed batch size, None when dynamic
    num_outputs: int | None  # classes, when every non-batch output dim is fixed


def _fixed(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _guess_layout(shape: tuple) -> str | None:
    c_first, c_last = _fixed(shape[1]), _fixed(shape[3])
    small = range(1, 17)  # channel counts; spatial sides are rarely this small
    if c_first in small and c_last not in small:
        return "NCHW"
    if c_last in small and c_first not in small:
        return "NHWC"
    if c_first in small and c_last in small:
        return "NCHW" if c_first <= c_last else "NHWC"
    return None


def _session(path: Path, what: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # A probe only: keep it cheap (no graph optimisation, one thread).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelConfigError(f"{what}: ONNX Runtime cannot load {path}: {exc}") from exc


def _read(path: Path) -> OnnxInfo:
    sess = _session(path, str(path))
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelConfigError(
            f"{path}: the model has {len(inputs)} inputs ({names}); roiclass needs exactly one image input"
        )
    inp = inputs[0]
    shape = tuple(inp.shape)
    if len(shape) != 4:
        raise ModelConfigError(
            f"{path}: input {inp.name!r} has shape {list(shape)}; roiclass needs a 4-D image input (NCHW or NHWC)"
        )
    if inp.type not in _DTYPES:
        raise ModelConfigError(
            f"{path}: input {inp.name!r} has type {inp.type}; supported: {', '.join(_DTYPES)}"
        )
    out_shape = tuple(outputs[0].shape)
    layout = _guess_layout(shape)
    channels = height = width = None
    if layout == "NCHW":
        channels, height, width = (_fixed(d) for d in shape[1:])
    elif layout == "NHWC":
        height, width, channels = (_fixed(d) for d in shape[1:])
    rest = [_fixed(d) for d in out_shape[1:]]
    num_outputs = int(np.prod(rest)) if rest and all(rest) else None
    return OnnxInfo(
        path=path,
        input_name=inp.name,
        input_shape=shape,
        input_dtype=_DTYPES[inp.type],
        output_shape=out_shape,
        layout=layout,
        channels=channels,
        height=height,
        width=width,
        batch=_fixed(shape[0]),
        num_outputs=num_outputs,
    )


def dims_for(info: OnnxInfo, layout: str) -> tuple[int | None, int | None, int | None]:
    """(channels, height, width) of the input read with the given layout."""
    shape = info.input_shape
    if layout == "NCHW":
        return _fixed(shape[1]), _fixed(shape[2]), _fixed(shape[3])
    return _fixed(shape[3]), _fixed(shape[1]), _fixed(shape[2])


_cache: dict[tuple, OnnxInfo] = {}
_probe_cache: dict[tuple, bool] = {}
_lock = threading.Lock()


def _key(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelConfigError(f"ONNX file {path} cannot be read: {exc.strerror or exc}") from exc
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def onnx_info(path: Path) -> OnnxInfo:
    """Input/output description of an ONNX file (cached by path, size, mtime)."""
    path = Path(path)
    key = _key(path)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    info = _read(path)
    with _lock:
        _cache[key] = info
    return info


def outputs_are_probabilities(path: Path, layout: str, channels: int, height: int, width: int, dtype: str) -> bool:
    """Guess whether the first output is already a probability distribution.

    Runs the model on two random inputs: rows in [0, 1] summing to 1 mean a
    softmax is already in the graph (so the engine must not apply another).
    Only used where the model format does not say it (bare ONNX, .emd,
    imgproxy); config.toml says it with [output] activation.
    """
    path = Path(path)
    key = _key(path) + (layout, channels, height, width, dtype)
    with _lock:
        hit = _probe_cache.get(key)
    if hit is not None:
        return hit
    sess = _session(path, str(path))
    shape = (1, channels, height, width) if layout == "NCHW" else (1, height, width, channels)
    rng = np.random.default_rng(0)
    rows = []
    try:
        for _ in range(2):
            x = rng.standard_normal(shape).astype(dtype)
            rows.append(np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0], np.float64).reshape(1, -1))
    except Exception as exc:
        raise ModelConfigError(f"{path}: test inference with input shape {list(shape)} failed: {exc}") from exc
    out = np.concatenate(rows)
    probs = bool(out.min() >= -1e-6 and out.max() <= 1 + 1e-6 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))
    log.debug("%s: outputs look like %s", path, "probabilities" if probs else "logits")
    with _lock:
        _probe_cache[key] = probs
    return probs
