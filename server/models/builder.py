"""Turn what a model format says (partial) plus its ONNX file into a ModelSpec.

Every loader (config.toml, .emd/.dlpk, imgproxy flags, bare .onnx) gives the
values it knows and leaves the rest None; this module fills them from the
ONNX input/output shapes and checks that the two agree.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import normalization as norm
from .errors import ModelConfigError
from .onnx_info import dims_for, model_io, onnx_info, outputs_are_probabilities
from .spec import ModelSpec

CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16")
DEFAULT_MAX_BATCH = 32
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ModelConfigError(
            f"{where}: model name {name!r} is not allowed; use letters, digits, '_', '-', '.' "
            "(starting with a letter or digit)"
        )
    return name


def _per_channel(values, channels: int, key: str, where: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    if len(vals) == 1:
        vals = vals * channels
    if len(vals) != channels:
        raise ModelConfigError(
            f"{where}: {key} has {len(vals)} values; the model input has {channels} channels "
            f"(give 1 or {channels} values)"
        )
    return vals


def build_spec(
    onnx_path: Path,
    *,
    name: str,
    version: str,
    where: str,
    fmt: str,
    source: Path | None,
    classes: tuple[str, ...] | None = None,
    width: int | None = None,
    height: int | None = None,
    channel_order: str | None = None,
    extract_bands: tuple[int, ...] | None = None,
    layout: str | None = None,
    normalization: str | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    dtype: str | None = None,
    softmax: bool | None = None,
    max_batch_size: int | None = None,
    **plain: Any,
) -> ModelSpec:
    """A complete ModelSpec; `plain` are ModelSpec fields already validated.

    `where` prefixes every error message (the config file, or the flag set).
    softmax None = find out by running the model (see outputs_are_probabilities).
    """
    check_name(name, where)
    onnx_path = Path(onnx_path)
    if onnx_path.suffix.lower() != ".onnx":
        raise ModelConfigError(
            f"{where}: model file {onnx_path.name} is not supported; roiclass runs ONNX models (.onnx) only"
        )
    if not onnx_path.is_file():
        raise ModelConfigError(f"{where}: model file {onnx_path} does not exist")
    info = onnx_info(onnx_path)
    shape = list(info.input_shape)

    if layout is None:
        if info.layout is None:
            raise ModelConfigError(
                f"{where}: cannot tell the layout from input shape {shape}; set layout to one of {', '.join(LAYOUTS)}"
            )
        layout = info.layout
    layout = str(layout).upper()
    if layout not in LAYOUTS:
        raise ModelConfigError(f"{where}: layout {layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
    c_onnx, h_onnx, w_onnx = dims_for(info, layout)

    if extract_bands is not None:
        bands = tuple(extract_bands)
        if not bands or any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in bands):
            raise ModelConfigError(f"{where}: extract_bands must be a non-empty list of band numbers >= 0, got {list(bands)}")
        order, channels = "bands:" + ",".join(str(b) for b in bands), len(bands)
    else:
        bands = None
        if channel_order is None:
            channel_order = "GRAY" if c_onnx == 1 else "RGB"
        order = str(channel_order).upper()
        if order not in CHANNEL_ORDERS:
            raise ModelConfigError(
                f"{where}: channel_order {channel_order!r} is not allowed; allowed: {', '.join(CHANNEL_ORDERS)} "
                "(or extract_bands for other band lists)"
            )
        channels = 1 if order == "GRAY" else 3
    if c_onnx is not None and c_onnx != channels:
        raise ModelConfigError(
            f"{where}: the model input has {c_onnx} channels (shape {shape}, {layout}) but channel order {order} gives {channels}"
        )

    sides = {}
    for key, given, fixed in (("width", width, w_onnx), ("height", height, h_onnx)):
        if given is not None:
            if not isinstance(given, int) or isinstance(given, bool) or given <= 0:
                raise ModelConfigError(f"{where}: {key} must be a positive integer, got {given!r}")
            if fixed is not None and fixed != given:
                raise ModelConfigError(
                    f"{where}: {key} = {given} but the model input {key} is fixed at {fixed} (shape {shape}, {layout})"
                )
        sides[key] = given if given is not None else fixed
        if sides[key] is None:
            raise ModelConfigError(f"{where}: the model input {key} is dynamic (shape {shape}); set {key}")

    if dtype is None:
        dtype = info.input_dtype
    if dtype not in DTYPES:
        raise ModelConfigError(f"{where}: dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    if dtype != info.input_dtype:
        raise ModelConfigError(f"{where}: dtype = {dtype} but the model input is {info.input_dtype}")

    norm_name = norm.canonical(normalization if normalization is not None else "unit", where)
    if norm_name == "custom":
        if mean is None or std is None:
            raise ModelConfigError(f"{where}: normalization 'custom' needs both mean and std")
        base_mean = base_std = None
    else:
        base_mean, base_std = norm.mean_std(norm_name, channels, order)
    if mean is not None or std is not None:
        # Explicit statistics override the named ones: the spec says what is applied.
        norm_name = "custom"
    mean_t = _per_channel(mean, channels, "mean", where) if mean is not None else base_mean
    std_t = _per_channel(std, channels, "std", where) if std is not None else base_std
    if any(s <= 0 for s in std_t):
        raise ModelConfigError(f"{where}: std values must be > 0, got {list(std_t)}")

    if classes is None:
        if info.num_outputs is None:
            raise ModelConfigError(
                f"{where}: the model output shape {list(info.output_shape)} does not tell the number of classes; "
                "give the class names"
            )
        classes = tuple(str(i) for i in range(info.num_outputs))
    classes = tuple(classes)
    if not classes:
        raise ModelConfigError(f"{where}: the class list is empty")
    if info.num_outputs is not None and info.num_outputs != len(classes):
        raise ModelConfigError(
            f"{where}: {len(classes)} class names given but the model outputs {info.num_outputs} values "
            f"(output shape {list(info.output_shape)})"
        )

    if max_batch_size is None:
        max_batch_size = info.batch or DEFAULT_MAX_BATCH
    if info.batch is not None and max_batch_size != info.batch:
        raise ModelConfigError(
            f"{where}: max_batch_size = {max_batch_size} but the model's batch size is fixed at {info.batch} "
            f"(input shape {shape}); set max_batch_size = {info.batch} or export with a dynamic batch"
        )

    if softmax is None:
        softmax = not outputs_are_probabilities(onnx_path, layout, channels, sides["height"], sides["width"], dtype)

    spec = ModelSpec(
        name=name,
        version=version,
        onnx_path=onnx_path,
        classes=classes,
        input_width=sides["width"],
        input_height=sides["height"],
        channels=channels,
        channel_order=order,
        extract_bands=bands,
        layout=layout,
        normalization=norm_name,
        mean=tuple(mean_t),
        std=tuple(std_t),
        input_dtype=dtype,
        softmax=bool(softmax),
        max_batch_size=max_batch_size,
        format=fmt,
        source=source,
        **plain,
    )
    return replace(spec, io=model_io(spec))


def read_classes_file(path: Path, where: str) -> tuple[str, ...]:
    """One class name per line; trailing blank lines are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ModelConfigError(f"{where}: classes file {path} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ModelConfigError(f"{where}: classes file {path} is not UTF-8 text: {exc}") from exc
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    for i, n in enumerate(names):
        if not n:
            # An empty line in the middle would silently shift every later index.
            raise ModelConfigError(f"{where}: classes file {path} line {i + 1} is empty")
    if not names:
        raise ModelConfigError(f"{where}: classes file {path} is empty")
    return tuple(names)
