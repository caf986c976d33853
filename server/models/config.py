"""Our per-model config.toml -> ModelSpec.

Every key is checked: unknown keys and wrong types or values raise a
ModelConfigError naming the file, the key and what is allowed. Paths in the
file (classes_file, golden_image) are relative to the file's folder.

SCHEMA is the one table of keys: its type and allowed values (checked when the
file is read), its range and conversion, and the ModelSpec field it sets
("heatmap.x" sets HeatmapDefaults.x). A new key is one row.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import normalization as norm
from .builder import CHANNEL_ORDERS, DTYPES, LAYOUTS, build_spec, check_name, read_classes_file
from .errors import ModelConfigError
from .pipeline import (DETECTOR_FORMATS, LETTERBOX_MODES, ChildSpec, DetectorSpec, parse_roi_rule,
                       parse_tta)
from .spec import HeatmapDefaults, ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"
_INT, _FLOAT, _STR, _BOOL, _LIST = "integer", "number", "string", "boolean", "list"


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float | None = None  # None: no upper bound
    lo_open: bool = False

    def check(self, value, path: str, where: str) -> None:
        if (value <= self.lo if self.lo_open else value < self.lo) or (self.hi is not None and value > self.hi):
            rng = f"{'(' if self.lo_open else '['}{self.lo}, {self.hi if self.hi is not None else 'inf'}]"
            raise ModelConfigError(f"{where}: {path} = {value!r} is out of range; allowed: {rng}")


@dataclass(frozen=True)
class _File:
    """What a conversion may need: the file (for messages) and its folder (for paths)."""
    where: str
    base: Path


@dataclass(frozen=True)
class Key:
    kind: str  # the TOML type
    field: str  # the ModelSpec field it sets; "heatmap.x": HeatmapDefaults.x
    allowed: tuple[str, ...] | None = None  # case-insensitive, stored as spelled here
    range: Range | None = None
    # value, dotted key, file -> field value; None: the value as it is (numbers as float)
    convert: Callable[[Any, str, _File], Any] | None = None
    default: Any = None  # applied when the key is absent (None: the spec or the ONNX file decides)


def _numbers(value: list, path: str, f: _File) -> tuple[float, ...]:
    if not value or not all(_type_ok(v, _FLOAT) for v in value):
        raise ModelConfigError(f"{f.where}: {path} must be a non-empty list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _class_names(value: list, path: str, f: _File) -> tuple[str, ...]:
    if not all(isinstance(x, str) and x.strip() for x in value):
        raise ModelConfigError(f"{f.where}: classes must be a list of non-empty strings")
    return tuple(x.strip() for x in value)


def _classes_file(value: str, path: str, f: _File) -> tuple[str, ...]:
    return read_classes_file(f.base / value, f.where)


def _bands(value: list, path: str, f: _File) -> tuple[int, ...]:
    if not value or not all(_type_ok(b, _INT) and b >= 0 for b in value):
        raise ModelConfigError(
            f"{f.where}: {path} must be a non-empty list of integers >= 0 (0-based bands), got {value!r}")
    return tuple(value)


def _golden_image(value: str, path: str, f: _File) -> Path:
    golden = f.base / value
    if not golden.is_file():
        raise ModelConfigError(f"{f.where}: {path} {golden} does not exist")
    return golden


def _tta(value: str, path: str, f: _File):
    try:
        return parse_tta(value)
    except ValueError as exc:
        raise ModelConfigError(f"{f.where}: {path} = {exc}") from None


def _class_refs(value: list, path: str, f: _File) -> tuple[str | int, ...]:
    """Class names or 0-based indices (checked against the classes once they are known)."""
    ok = all((isinstance(v, str) and v.strip()) or (_type_ok(v, _INT) and v >= 0) for v in value)
    if not ok:
        raise ModelConfigError(f"{f.where}: {path} must be a list of class names or indices >= 0, got {value!r}")
    return tuple(v.strip() if isinstance(v, str) else v for v in value)


# [[children]]: key -> (TOML type, required).
CHILD_KEYS = {"model": (_STR, True), "version": (_STR, False), "when": (_LIST, False),
              "min_confidence": (_FLOAT, False), "roi": (_STR, False)}


def _children(value: list, path: str, f: _File) -> tuple[ChildSpec, ...]:
    return tuple(_child(t, f"{path}[{i}]", f) for i, t in enumerate(value))


def _child(table, path: str, f: _File) -> ChildSpec:
    if not isinstance(table, dict):
        raise ModelConfigError(f"{f.where}: {path} must be a table ([[children]])")
    for key, value in table.items():
        if key not in CHILD_KEYS:
            raise ModelConfigError(f"{f.where}: unknown key {path}.{key!r}; allowed: {', '.join(CHILD_KEYS)}")
        if not _type_ok(value, CHILD_KEYS[key][0]):
            raise ModelConfigError(f"{f.where}: {path}.{key} must be of type {CHILD_KEYS[key][0]}, got {value!r}")
    missing = [k for k, (_, required) in CHILD_KEYS.items() if required and k not in table]
    if missing:
        raise ModelConfigError(f"{f.where}: {path} needs {', '.join(missing)}")
    check_name(table["model"], f"{f.where}: {path}.model")
    min_conf = float(table.get("min_confidence", 0.0))
    Range(0, 1).check(min_conf, f"{path}.min_confidence", f.where)
    roi = table.get("roi", "same")
    try:
        expand = parse_roi_rule(roi)
    except ValueError as exc:
        raise ModelConfigError(f"{f.where}: {path}.roi = {exc}") from None
    return ChildSpec(model=table["model"], version=table.get("version", ""),
                     when=_class_refs(table.get("when", []), f"{path}.when", f),
                     min_confidence=min_conf, roi=roi.strip().lower(), expand=expand)


_COUNT, _SIZE = Range(1), Range(0)  # >= 1 and >= 0
SCHEMA: dict[str, Key] = {
    "name": Key(_STR, "name"),
    "classes_file": Key(_STR, "classes", convert=_classes_file),
    "classes": Key(_LIST, "classes", convert=_class_names),
    "input.width": Key(_INT, "input_width"),
    "input.height": Key(_INT, "input_height"),
    "input.channel_order": Key(_STR, "channel_order", CHANNEL_ORDERS),
    "input.extract_bands": Key(_LIST, "extract_bands", convert=_bands),
    "input.layout": Key(_STR, "layout", LAYOUTS),
    "input.normalization": Key(_STR, "normalization", norm.NAMES),
    "input.mean": Key(_LIST, "mean", convert=_numbers),
    "input.std": Key(_LIST, "std", convert=_numbers),
    "input.resize": Key(_STR, "resize", ("stretch", "letterbox", "center_crop")),
    "input.crop_fraction": Key(_FLOAT, "crop_fraction", range=Range(0, 1, lo_open=True)),
    "input.border": Key(_STR, "border", ("constant", "replicate")),
    "input.fill": Key(_FLOAT, "fill", range=Range(0, 65535)),
    "input.dtype": Key(_STR, "input_dtype", DTYPES),
    "output.activation": Key(_STR, "softmax", ("softmax", "none"),
                             convert=lambda v, path, f: v == "softmax", default="softmax"),
    "batching.max_batch_size": Key(_INT, "max_batch_size", range=_COUNT),
    "batching.max_queue_delay_us": Key(_INT, "max_queue_delay_us", range=_SIZE),
    "batching.max_queue_size": Key(_INT, "max_queue_size", range=_COUNT),
    "instances.per_device": Key(_INT, "instances_per_device", range=_SIZE),
    "instances.allow_cpu_fallback": Key(_BOOL, "allow_cpu_fallback"),
    "defaults.top_k": Key(_INT, "top_k", range=_SIZE),
    "defaults.min_confidence": Key(_FLOAT, "min_confidence", range=Range(0, 1)),
    "warmup.golden_image": Key(_STR, "golden_image", convert=_golden_image),
    "warmup.expected_class": Key(_INT, "golden_class"),
    "defaults.tta": Key(_STR, "tta", convert=_tta),
    "defaults.detector": Key(_STR, "default_detector"),
    "children": Key(_LIST, "children", convert=_children),
    "detector.format": Key(_STR, "detector.format", DETECTOR_FORMATS),
    "detector.confidence": Key(_FLOAT, "detector.confidence", range=Range(0, 1)),
    "detector.iou": Key(_FLOAT, "detector.iou", range=Range(0, 1)),
    "detector.classes": Key(_LIST, "detector.classes", convert=_class_refs),
    "detector.agnostic": Key(_BOOL, "detector.agnostic"),
    "detector.letterbox": Key(_STR, "detector.letterbox", LETTERBOX_MODES),
    "detector.max_detections": Key(_INT, "detector.max_detections", range=_COUNT),
    "heatmap.patch_size": Key(_INT, "heatmap.patch_size", range=_SIZE),
    "heatmap.stride": Key(_INT, "heatmap.stride", range=_SIZE),
    "heatmap.max_side": Key(_INT, "heatmap.max_side", range=_SIZE),
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


def _level(prefix: str) -> list[str]:
    """The keys and tables directly under `prefix` ("" or "input."), in SCHEMA order."""
    names = [k[len(prefix):].split(".")[0] for k in SCHEMA if k.startswith(prefix)]
    return list(dict.fromkeys(names))


def _check(table: dict, where: str, prefix: str = "") -> dict:
    """Validated copy of `table`: flat {dotted key: value}."""
    out: dict[str, Any] = {}
    names = _level(prefix)
    for key, value in table.items():
        path = prefix + key
        if key not in names:
            allowed = ", ".join(prefix + k for k in names)
            raise ModelConfigError(f"{where}: unknown key {path!r}; allowed: {allowed}")
        rule = SCHEMA.get(path)
        if rule is None:  # a table
            if not isinstance(value, dict):
                raise ModelConfigError(f"{where}: {path} must be a table ([{path}])")
            out.update(_check(value, where, path + "."))
            continue
        if not _type_ok(value, rule.kind):
            raise ModelConfigError(f"{where}: {path} must be of type {rule.kind}, got {value!r}")
        if rule.allowed is not None:
            # Case-insensitive; stored spelled as in the allowed list.
            probe = value.upper() if rule.allowed[0].isupper() else value.lower()
            if probe not in rule.allowed:
                raise ModelConfigError(f"{where}: {path} = {value!r} is not allowed; allowed: {', '.join(rule.allowed)}")
            value = probe
        out[path] = value
    return out


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
    return _check(data, where)


def config_model_name(path: Path, default: str) -> str:
    """The `name` a config gives, else `default` (its folder name)."""
    cfg = read_config(path)
    return check_name(cfg.get("name", default), str(path))


def _fields(c: dict[str, Any], f: _File) -> dict[str, Any]:
    """ModelSpec fields from the validated keys, through each row's range and conversion."""
    fields: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {"heatmap": {}, "detector": {}}
    for path, rule in SCHEMA.items():
        value = c.get(path, rule.default)
        if value is None:
            continue
        if rule.range is not None:
            rule.range.check(value, path, f.where)
        if rule.convert is not None:
            value = rule.convert(value, path, f)
        elif rule.kind == _FLOAT:
            value = float(value)
        table, _, name = rule.field.rpartition(".")
        (tables[table] if table else fields)[name] = value
    fields["heatmap"] = HeatmapDefaults(**tables["heatmap"])
    if tables["detector"]:
        if "format" not in tables["detector"]:
            raise ModelConfigError(f"{f.where}: [detector] needs format; allowed: {', '.join(DETECTOR_FORMATS)}")
        fields["detector"] = DetectorSpec(**tables["detector"])
    return fields


def spec_from_config(config_path: Path, onnx_path: Path, version: str, default_name: str) -> ModelSpec:
    """ModelSpec of one version: `onnx_path` described by `config_path`."""
    config_path = Path(config_path)
    where = str(config_path)
    c = read_config(config_path)
    if "classes" in c and "classes_file" in c:
        raise ModelConfigError(f"{where}: give either classes or classes_file, not both")
    if "warmup.expected_class" in c and "warmup.golden_image" not in c:
        raise ModelConfigError(f"{where}: warmup.expected_class needs warmup.golden_image")
    fields = _fields(c, _File(where, config_path.parent))
    spec = build_spec(onnx_path, name=fields.pop("name", default_name), version=version, where=where,
                      fmt="roiclass", source=config_path, **fields)
    if spec.golden_class is not None and not 0 <= spec.golden_class < len(spec.classes):
        raise ModelConfigError(
            f"{where}: warmup.expected_class = {spec.golden_class} is out of range; allowed: 0..{len(spec.classes) - 1}"
        )
    return spec
