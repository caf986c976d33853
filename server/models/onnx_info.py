"""What an ONNX file says about its input and output, read with ONNX Runtime.

onnx itself is not a runtime dependency, so the shapes come from a CPU
InferenceSession. What a file holds is cached by (path, size, mtime), in a
bounded LRU, because the model manager rescans the repository on every poll.

Two readings of the same facts: onnx_info (what the loaders need to fill a
spec, with their messages) and model_io (the input and output checked against
a finished spec: what the engine feeds).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelConfigError
from .lru import LruCache
from .spec import ModelIO, ModelSpec

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}
# Distinct (file, size, mtime) stamps remembered; a repository rarely holds more.
CACHE_SIZE = 256


@dataclass(frozen=True)
class _Graph:
    """The facts of one file as ONNX Runtime reports them, unchecked."""
    input_names: tuple[str, ...]
    input_shape: tuple  # of the first input
    input_type: str
    output_name: str
    output_shape: tuple


@dataclass(frozen=True)
class OnnxInfo:
    """What the loaders read to fill a spec (dims of the chosen layout: dims_for)."""
    # Dims as ONNX Runtime reports them: int when fixed, None/str when symbolic.
    input_shape: tuple[int | str | None, ...]
    input_dtype: str  # "float32" | "float16"
    output_shape: tuple[int | str | None, ...]
    # Layout guessed from the shape: "NCHW", "NHWC" or None when ambiguous.
    layout: str | None
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


_graphs: LruCache[_Graph] = LruCache(CACHE_SIZE)
_probes: LruCache[bool] = LruCache(CACHE_SIZE)


def _graph(path: Path) -> _Graph:
    """What the file holds, cached by its stamp; a file that fails to load is not cached."""
    key = _stamp(path)
    hit = _graphs.get(key)
    if hit is None:
        sess = _session(path, str(path))
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        hit = _Graph(tuple(i.name for i in inputs), tuple(inputs[0].shape), inputs[0].type,
                     outputs[0].name, tuple(outputs[0].shape))
        _graphs.put(key, hit)
    return hit


def _read(path: Path) -> OnnxInfo:
    g = _graph(path)
    if len(g.input_names) != 1:
        names = ", ".join(g.input_names)
        raise ModelConfigError(
            f"{path}: the model has {len(g.input_names)} inputs ({names}); roiclass needs exactly one image input"
        )
    name, shape = g.input_names[0], g.input_shape
    if len(shape) != 4:
        raise ModelConfigError(
            f"{path}: input {name!r} has shape {list(shape)}; roiclass needs a 4-D image input (NCHW or NHWC)"
        )
    if g.input_type not in _DTYPES:
        raise ModelConfigError(
            f"{path}: input {name!r} has type {g.input_type}; supported: {', '.join(_DTYPES)}"
        )
    rest = [_fixed(d) for d in g.output_shape[1:]]
    return OnnxInfo(
        input_shape=shape,
        input_dtype=_DTYPES[g.input_type],
        output_shape=g.output_shape,
        layout=_guess_layout(shape),
        batch=_fixed(shape[0]),
        num_outputs=int(np.prod(rest)) if rest and all(rest) else None,
    )


def dims_for(info: OnnxInfo, layout: str) -> tuple[int | None, int | None, int | None]:
    """(channels, height, width) of the input read with the given layout."""
    shape = info.input_shape
    if layout == "NCHW":
        return _fixed(shape[1]), _fixed(shape[2]), _fixed(shape[3])
    return _fixed(shape[3]), _fixed(shape[1]), _fixed(shape[2])


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelConfigError(f"ONNX file {path} cannot be read: {exc.strerror or exc}") from exc
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def onnx_info(path: Path) -> OnnxInfo:
    """Input/output description of an ONNX file, checked to be one 4-D float input."""
    return _read(Path(path))


def model_io(spec: ModelSpec) -> ModelIO:
    """The ONNX input and output of `spec`, checked against its layout and sizes.

    The one reading of what the engine feeds: build_spec stores it in spec.io;
    the engine calls it for a spec built by hand (io None). Raises ValueError."""
    g = _graph(Path(spec.onnx_path))
    name, shape = g.input_names[0], list(g.input_shape)
    if g.input_type not in _DTYPES:
        raise ValueError(f"model input {name!r} is {g.input_type}; supported: {', '.join(_DTYPES)}")
    if len(shape) != 4:
        raise ValueError(f"model input {name!r} has shape {shape}; expected 4 dims ({spec.layout})")
    if spec.layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout {spec.layout!r}: allowed NCHW, NHWC")
    want = spec.item_shape
    for dim, (got, exp) in enumerate(zip(shape[1:], want), start=1):
        if _fixed(got) is not None and got != exp:
            raise ValueError(f"model input {name!r} shape {shape} does not match the config "
                             f"({spec.layout} {want}) at dim {dim}")
    return ModelIO(input_name=name, output_name=g.output_name, dtype=np.dtype(_DTYPES[g.input_type]),
                   item_shape=want, fixed_batch=_fixed(shape[0]) or 0)


def outputs_are_probabilities(path: Path, io: ModelIO) -> bool:
    """Guess whether the first output is already a probability distribution.

    Runs the model on two random inputs: rows in [0, 1] summing to 1 mean a
    softmax is already in the graph (so the engine must not apply another).
    Only used where the model format does not say it (bare ONNX, .emd,
    imgproxy); config.toml says it with [output] activation.
    """
    path = Path(path)
    key = _stamp(path) + (io,)
    hit = _probes.get(key)
    if hit is not None:
        return hit
    sess = _session(path, str(path))
    shape = (io.fixed_batch or 1,) + io.item_shape
    rng = np.random.default_rng(0)
    rows = []
    try:
        for _ in range(2):
            x = rng.standard_normal(shape).astype(io.dtype)
            rows.append(np.asarray(sess.run(None, {io.input_name: x})[0], np.float64).reshape(shape[0], -1))
    except Exception as exc:
        raise ModelConfigError(f"{path}: test inference with input shape {list(shape)} failed: {exc}") from exc
    out = np.concatenate(rows)
    probs = bool(out.min() >= -1e-6 and out.max() <= 1 + 1e-6 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))
    log.debug("%s: outputs look like %s", path, "probabilities" if probs else "logits")
    _probes.put(key, probs)
    return probs
