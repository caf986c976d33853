"""Our per-model config.toml -> ModelSpec.

Every key is checked: unknown keys and wrong types or values raise a
ModelConfigError naming the file, the key and what is allowed. Paths in the
file (classes_file, golden_image) are relative to the file's folder.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import normalization as norm
from .builder import CHANNEL_ORDERS, DTYPES, LAYOUTS, build_spec, check_name, read_classes_file
from .errors import ModelConfigError
from .spec import HeatmapDefaults, ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"

# (type, allowed values or None) per key; tables hold their own keys.
_INT, _FLOAT, _STR, _BOOL, _LIST = "integer", "number", "string", "boolean", "list"
SCHEMA: dict[str, Any] = {
    "name": _STR,
    "classes_file": _STR,
    "classes": _LIST,
    "input": {
        "width": _INT,
        "height": _INT,
        "channel_order": (_STR, CHANNEL_ORDERS),
        "extract_bands": _LIST,
        "layout": (_STR, LAYOUTS),
        "normalization": (_STR, norm.NAMES),
        "mean": _LIST,
        "std": _LIST,
        "resize": (_STR, ("stretch", "letterbox", "center_crop")),
        "crop_fraction": _FLOAT,
        "border": (_STR, ("constant", "replicate")),
        "fill": _FLOAT,
        "dtype": (_STR, DTYPES),
    },
    "output": {"activation": (_STR, ("softmax", "none"))},
    "batching": {"max_batch_size": _INT, "max_queue_delay_us": _INT, "max_queue_size": _INT},
    "instances": {"per_device": _INT, "allow_cpu_fallback": _BOOL},
    "defaults": {"top_k": _INT, "min_confidence": _FLOAT},
    "warmup": {"golden_image": _STR, "expected_class": _INT},
    "heatmap": {"patch_size": _INT, "stride": _INT, "max_side": _INT},
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _FLOAT:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, list)


def _check(table: dict, schema: dict, where: str, prefix: str = "") -> dict:
    """Validated copy of `table`: flat {dotted key: value}."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = prefix + key
        if key not in schema:
            allowed = ", ".join(prefix + k for k in schema)
            raise ModelConfigError(f"{where}: unknown key {path!r}; allowed: {allowed}")
        rule = schema[key]
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise ModelConfigError(f"{where}: {path} must be a table ([{path}])")
            out.update(_check(value, rule, where, path + "."))
            continue
        kind, allowed = rule if isinstance(rule, tuple) else (rule, None)
        if not _type_ok(value, kind):
            raise ModelConfigError(f"{where}: {path} must be of type {kind}, got {value!r}")
        if allowed is not None:
            # Case-insensitive; stored spelled as in the allowed list.
            probe = value.upper() if allowed[0].isupper() else value.lower()
            if probe not in allowed:
                raise ModelConfigError(f"{where}: {path} = {value!r} is not allowed; allowed: {', '.join(allowed)}")
            value = probe
        out[path] = value
    return out


def _numbers(value: list, path: str, where: str) -> tuple[float, ...]:
    if not value or not all(_type_ok(v, _FLOAT) for v in value):
        raise ModelConfigError(f"{where}: {path} must be a non-empty list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _range(value, lo, hi, path: str, where: str, lo_open: bool = False):
    if value is None:
        return None
    if (value <= lo if lo_open else value < lo) or (hi is not None and value > hi):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]"
        raise ModelConfigError(f"{where}: {path} = {value!r} is out of range; allowed: {rng}")
    return value


def read_config(path: Path) -> dict[str, Any]:
    """The validated flat key -> value map of a config.toml."""
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ModelConfigError(f"{where}: cannot be read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelConfigError(f"{where}: not valid TOML: {exc}") from exc
    return _check(data, SCHEMA, where)


def config_model_name(path: Path, default: str) -> str:
    """The `name` a config gives, else `default` (its folder name)."""
    cfg = read_config(path)
    return check_name(cfg.get("name", default), str(path))


def spec_from_config(config_path: Path, onnx_path: Path, version: str, default_name: str) -> ModelSpec:
    """ModelSpec of one version: `onnx_path` described by `config_path`."""
    config_path = Path(config_path)
    where = str(config_path)
    base = config_path.parent
    c = read_config(config_path)
    g = c.get

    if "classes" in c and "classes_file" in c:
        raise ModelConfigError(f"{where}: give either classes or classes_file, not both")
    classes = None
    if "classes" in c:
        if not all(isinstance(x, str) and x.strip() for x in c["classes"]):
            raise ModelConfigError(f"{where}: classes must be a list of non-empty strings")
        classes = tuple(x.strip() for x in c["classes"])
    elif "classes_file" in c:
        classes = read_classes_file(base / c["classes_file"], where)

    bands = None
    if "input.extract_bands" in c:
        bands = c["input.extract_bands"]
        if not bands or not all(_type_ok(b, _INT) and b >= 0 for b in bands):
            raise ModelConfigError(f"{where}: input.extract_bands must be a non-empty list of integers >= 0 (0-based bands), got {bands!r}")
        bands = tuple(bands)

    mean = _numbers(c["input.mean"], "input.mean", where) if "input.mean" in c else None
    std = _numbers(c["input.std"], "input.std", where) if "input.std" in c else None

    for key in ("batching.max_batch_size", "batching.max_queue_size"):
        _range(g(key), 1, None, key, where)
    for key in ("batching.max_queue_delay_us", "instances.per_device", "defaults.top_k",
                "heatmap.patch_size", "heatmap.stride", "heatmap.max_side"):
        _range(g(key), 0, None, key, where)
    _range(g("defaults.min_confidence"), 0, 1, "defaults.min_confidence", where)
    _range(g("input.crop_fraction"), 0, 1, "input.crop_fraction", where, lo_open=True)
    _range(g("input.fill"), 0, 65535, "input.fill", where)

    plain: dict[str, Any] = {}
    for key, field in (
        ("input.resize", "resize"),
        ("input.crop_fraction", "crop_fraction"),
        ("input.border", "border"),
        ("input.fill", "fill"),
        ("batching.max_queue_delay_us", "max_queue_delay_us"),
        ("batching.max_queue_size", "max_queue_size"),
        ("instances.per_device", "instances_per_device"),
        ("instances.allow_cpu_fallback", "allow_cpu_fallback"),
        ("defaults.top_k", "top_k"),
        ("defaults.min_confidence", "min_confidence"),
    ):
        if key in c:
            plain[field] = float(c[key]) if field in ("crop_fraction", "fill", "min_confidence") else c[key]

    hm = HeatmapDefaults()
    plain["heatmap"] = HeatmapDefaults(
        patch_size=g("heatmap.patch_size", hm.patch_size),
        stride=g("heatmap.stride", hm.stride),
        max_side=g("heatmap.max_side", hm.max_side),
    )
    if "warmup.golden_image" in c:
        golden = base / c["warmup.golden_image"]
        if not golden.is_file():
            raise ModelConfigError(f"{where}: warmup.golden_image {golden} does not exist")
        plain["golden_image"] = golden
    if "warmup.expected_class" in c:
        if "warmup.golden_image" not in c:
            raise ModelConfigError(f"{where}: warmup.expected_class needs warmup.golden_image")
        plain["golden_class"] = c["warmup.expected_class"]

    activation = g("output.activation", "softmax")
    spec = build_spec(
        onnx_path,
        name=c.get("name", default_name),
        version=version,
        where=where,
        fmt="roiclass",
        source=config_path,
        classes=classes,
        width=g("input.width"),
        height=g("input.height"),
        channel_order=None if bands is not None else g("input.channel_order"),
        extract_bands=bands,
        layout=g("input.layout"),
        normalization=g("input.normalization"),
        mean=mean,
        std=std,
        dtype=g("input.dtype"),
        softmax=activation == "softmax",
        max_batch_size=g("batching.max_batch_size"),
        **plain,
    )
    if spec.golden_class is not None and not 0 <= spec.golden_class < len(spec.classes):
        raise ModelConfigError(
            f"{where}: warmup.expected_class = {spec.golden_class} is out of range; allowed: 0..{len(spec.classes) - 1}"
        )
    return spec
