"""Turn what a model format says (partial) plus its ONNX file into a ModelSpec.

Every loader (config.toml, .emd/.dlpk, imgproxy flags, bare .onnx) gives the
ModelSpec fields it knows and leaves the rest None; build_spec fills them from
the ONNX input/output shapes, one _resolve_* step per fact, and checks that the
two agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import normalization as norm
from .detector_spec import output_shape_at, resolve_detector
from .errors import ModelConfigError
from .onnx_info import OnnxInfo, dims_for, model_io, onnx_info, outputs_are_probabilities
from .spec import ModelSpec, per_channel

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


@dataclass(frozen=True)
class _Input:
    """The ONNX input as the steps read it: the file's facts plus the chosen layout."""
    info: OnnxInfo
    layout: str
    channels: int | None  # fixed dims in that layout, None when dynamic
    height: int | None
    width: int | None
    where: str

    @property
    def shape(self) -> list:
        return list(self.info.input_shape)


def build_spec(
    onnx_path: Path, *, name: str, version: str, where: str, fmt: str, source: Path | None, **given: Any
) -> ModelSpec:
    """A complete ModelSpec from the ModelSpec fields a loader `given` (None = unknown).

    `where` prefixes every error message (the config file, or the flag set).
    softmax None = find out by running the model (see outputs_are_probabilities).
    Fields no step resolves are passed through, already validated.
    """
    check_name(name, where)
    onnx_path = _resolve_path(Path(onnx_path), where)
    info = onnx_info(onnx_path)
    inp = _resolve_layout(info, given.pop("layout", None), where)
    order, bands, channels = _resolve_channels(inp, given.pop("channel_order", None), given.pop("extract_bands", None))
    width, height = _resolve_sides(inp, given.pop("input_width", None), given.pop("input_height", None))
    dtype = _resolve_dtype(inp, given.pop("input_dtype", None))
    norm_name, mean, std = _resolve_normalization(
        given.pop("normalization", None), given.pop("mean", None), given.pop("std", None), channels, order, where)
    detector = given.pop("detector", None)
    if detector is None:
        classes = _resolve_classes(inp, given.pop("classes", None))
    else:  # the output holds boxes: its layout, not its size, gives the classes
        item = (channels, height, width) if inp.layout == "NCHW" else (height, width, channels)
        classes, detector = resolve_detector(
            detector, info.output_shape, given.pop("classes", None), input_width=width, input_height=height,
            resize=given.get("resize"), where=where,
            probe=lambda: output_shape_at(onnx_path, (info.batch or 1,) + item, dtype))
        given["softmax"] = False
    max_batch = _resolve_batch(inp, given.pop("max_batch_size", None))
    softmax = given.pop("softmax", None)
    spec = ModelSpec(
        name=name, version=version, onnx_path=onnx_path, classes=classes,
        input_width=width, input_height=height, channels=channels, channel_order=order,
        extract_bands=bands, layout=inp.layout, normalization=norm_name, mean=mean, std=std,
        input_dtype=dtype, max_batch_size=max_batch, format=fmt, source=source, detector=detector,
        **{k: v for k, v in given.items() if v is not None},
    )
    io = model_io(spec)
    # Unsaid by the loader: run the model (on its own input shape) to find out.
    found = softmax if softmax is not None else not outputs_are_probabilities(onnx_path, io)
    return replace(spec, io=io, softmax=bool(found))


def _resolve_path(onnx_path: Path, where: str) -> Path:
    if onnx_path.suffix.lower() != ".onnx":
        raise ModelConfigError(
            f"{where}: model file {onnx_path.name} is not supported; roiclass runs ONNX models (.onnx) only"
        )
    if not onnx_path.is_file():
        raise ModelConfigError(f"{where}: model file {onnx_path} does not exist")
    return onnx_path


def _resolve_layout(info: OnnxInfo, layout: str | None, where: str) -> _Input:
    if layout is None:
        if info.layout is None:
            raise ModelConfigError(
                f"{where}: cannot tell the layout from input shape {list(info.input_shape)}; "
                f"set layout to one of {', '.join(LAYOUTS)}"
            )
        layout = info.layout
    layout = str(layout).upper()
    if layout not in LAYOUTS:
        raise ModelConfigError(f"{where}: layout {layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
    return _Input(info, layout, *dims_for(info, layout), where)


def _resolve_channels(inp: _Input, channel_order: str | None, extract_bands) -> tuple[str, tuple[int, ...] | None, int]:
    """(channel order, band list or None, channels); a band list wins over channel_order."""
    where = inp.where
    if extract_bands is not None:
        bands = tuple(extract_bands)
        if not bands or any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in bands):
            raise ModelConfigError(f"{where}: extract_bands must be a non-empty list of band numbers >= 0, got {list(bands)}")
        order, channels = "bands:" + ",".join(str(b) for b in bands), len(bands)
    else:
        bands = None
        if channel_order is None:
            channel_order = "GRAY" if inp.channels == 1 else "RGB"
        order = str(channel_order).upper()
        if order not in CHANNEL_ORDERS:
            raise ModelConfigError(
                f"{where}: channel_order {channel_order!r} is not allowed; allowed: {', '.join(CHANNEL_ORDERS)} "
                "(or extract_bands for other band lists)"
            )
        channels = 1 if order == "GRAY" else 3
    if inp.channels is not None and inp.channels != channels:
        raise ModelConfigError(
            f"{where}: the model input has {inp.channels} channels (shape {inp.shape}, {inp.layout}) "
            f"but channel order {order} gives {channels}"
        )
    return order, bands, channels


def _resolve_sides(inp: _Input, width: int | None, height: int | None) -> tuple[int, int]:
    sides = {}
    for key, given, fixed in (("width", width, inp.width), ("height", height, inp.height)):
        if given is not None:
            if not isinstance(given, int) or isinstance(given, bool) or given <= 0:
                raise ModelConfigError(f"{inp.where}: {key} must be a positive integer, got {given!r}")
            if fixed is not None and fixed != given:
                raise ModelConfigError(
                    f"{inp.where}: {key} = {given} but the model input {key} is fixed at {fixed} "
                    f"(shape {inp.shape}, {inp.layout})"
                )
        sides[key] = given if given is not None else fixed
        if sides[key] is None:
            raise ModelConfigError(f"{inp.where}: the model input {key} is dynamic (shape {inp.shape}); set {key}")
    return sides["width"], sides["height"]


def _resolve_dtype(inp: _Input, dtype: str | None) -> str:
    onnx_dtype = inp.info.input_dtype
    dtype = onnx_dtype if dtype is None else dtype
    if dtype not in DTYPES:
        raise ModelConfigError(f"{inp.where}: dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    if dtype != onnx_dtype:
        raise ModelConfigError(f"{inp.where}: dtype = {dtype} but the model input is {onnx_dtype}")
    return dtype


def _resolve_normalization(name: str | None, mean, std, channels: int, order: str, where: str):
    """(normalization name, mean, std) per channel; explicit statistics override a name."""
    norm_name = norm.canonical(name if name is not None else "unit", where)
    if norm_name == "custom":
        if mean is None or std is None:
            raise ModelConfigError(f"{where}: normalization 'custom' needs both mean and std")
        base_mean = base_std = None
    else:
        base_mean, base_std = norm.mean_std(norm_name, channels, order)
    if mean is not None or std is not None:
        # Explicit statistics override the named ones: the spec says what is applied.
        norm_name = "custom"
    mean_t = _given_stats(mean, channels, "mean", where) if mean is not None else base_mean
    std_t = _given_stats(std, channels, "std", where) if std is not None else base_std
    if any(s <= 0 for s in std_t):
        raise ModelConfigError(f"{where}: std values must be > 0, got {list(std_t)}")
    return norm_name, mean_t, std_t


def _given_stats(values, channels: int, key: str, where: str) -> tuple[float, ...]:
    """A loader's mean or std: 1 or `channels` values (stricter than ModelSpec's rule)."""
    values = tuple(values)
    if len(values) not in (1, channels):
        raise ModelConfigError(
            f"{where}: {key} has {len(values)} values; the model input has {channels} channels "
            f"(give 1 or {channels} values)"
        )
    return per_channel(values, channels, key, where)


def _resolve_classes(inp: _Input, classes) -> tuple[str, ...]:
    info, where = inp.info, inp.where
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
    return classes


def _resolve_batch(inp: _Input, max_batch_size: int | None) -> int:
    fixed = inp.info.batch
    if max_batch_size is None:
        max_batch_size = fixed or DEFAULT_MAX_BATCH
    if fixed is not None and max_batch_size != fixed:
        raise ModelConfigError(
            f"{inp.where}: max_batch_size = {max_batch_size} but the model's batch size is fixed at {fixed} "
            f"(input shape {inp.shape}); set max_batch_size = {fixed} or export with a dynamic batch"
        )
    return max_batch_size


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
