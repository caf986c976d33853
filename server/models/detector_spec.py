"""A detector model's [detector] table checked against its ONNX output.

The output's per-image shape (without the batch axis) must be static and fit
the format's layout; the class count it implies must equal the class names
given (classes / classes_file: the detector's classes); the classes filter
becomes indices. build_spec calls resolve_detector instead of its classifier
class-count step.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .errors import ModelConfigError
from .pipeline import DetectorSpec

# format -> (layout as the error names it, rows before the classes, rows after, class axis)
LAYOUTS = {
    "yolov5": ("[N, 5+nc] (cx, cy, w, h, objectness, class scores)", 5, 0, 1),
    "yolov8": ("[4+nc, N] (cx, cy, w, h, class scores; YOLOv8-v11)", 4, 0, 0),
    "yolox": ("[N, 5+nc] (raw head output: grid offsets, log sizes, objectness, class scores)", 5, 0, 1),
    "yolov8-obb": ("[4+nc+1, N] (cx, cy, w, h, class scores, angle in radians)", 4, 1, 0),
}
YOLOX_STRIDES = (8, 16, 32)


def supported_layouts() -> str:
    return "; ".join(f"{fmt} {layout}" for fmt, (layout, *_rest) in LAYOUTS.items())


def resolve_detector(det: DetectorSpec, output_shape: tuple, classes, *, input_width: int,
                     input_height: int, resize: str | None, where: str,
                     probe: Callable[[], tuple] | None = None) -> tuple[tuple[str, ...], DetectorSpec]:
    """(class names, the DetectorSpec with output_shape and class indices) or ModelConfigError.

    `probe()` runs the model once at its configured input size and returns the
    output's shape: used when the file's output dims are dynamic (an export with
    dynamic axes, as NudeNet's 320n.onnx), whose shape the input size fixes."""
    if det.format not in LAYOUTS:
        raise ModelConfigError(f"{where}: detector format {det.format!r} is not supported; "
                               f"supported layouts: {supported_layouts()}")
    if resize not in (None, "stretch"):
        raise ModelConfigError(f"{where}: a detector takes input.resize = \"stretch\" (got {resize!r}); "
                               "its letterbox is [detector] letterbox")
    if probe is not None and not all(isinstance(d, int) and d > 0 for d in output_shape[1:]):
        try:
            output_shape = (output_shape[0],) + tuple(probe()[1:])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelConfigError(f"{where}: the detector output shape {list(output_shape)} is dynamic and "
                                   f"a run at the input size {input_width}x{input_height} failed: {exc}") from exc
    shape = _static_shape(output_shape, where)
    nc = _class_count(det.format, shape, where)
    if det.format == "yolox":
        _check_yolox_grid(shape[0], input_width, input_height, where)
    names = tuple(str(i) for i in range(nc)) if classes is None else tuple(classes)
    if len(names) != nc:
        raise ModelConfigError(f"{where}: {len(names)} class names given but the {det.format} output "
                               f"shape {list(shape)} holds {nc} classes")
    return names, replace(det, output_shape=shape, classes=_class_filter(det.classes, names, where))


def output_shape_at(path: Path, input_shape: tuple[int, ...], dtype: str) -> tuple[int, ...]:
    """The first output's shape for one zero input of `input_shape` (ONNX Runtime, CPU, one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.zeros(input_shape, np.dtype(dtype))
    return tuple(sess.run(None, {sess.get_inputs()[0].name: x})[0].shape)


def _static_shape(output_shape: tuple, where: str) -> tuple[int, ...]:
    per_image = tuple(output_shape[1:])
    dynamic = [f"dim {i + 1} ({d!r})" for i, d in enumerate(per_image)
               if not (isinstance(d, int) and d > 0)]
    if dynamic:
        raise ModelConfigError(f"{where}: the detector output shape {list(output_shape)} has dynamic "
                               f"{', '.join(dynamic)}; a detector needs a static per-image output "
                               "(export with fixed input size)")
    return per_image


def _class_count(fmt: str, shape: tuple[int, ...], where: str) -> int:
    layout, before, after, axis = LAYOUTS[fmt]
    if len(shape) != 2 or shape[axis] <= before + after:
        raise ModelConfigError(f"{where}: the detector output shape (per image) {list(shape)} is not "
                               f"{fmt}'s {layout}; supported layouts: {supported_layouts()}")
    return shape[axis] - before - after


def _check_yolox_grid(n: int, width: int, height: int, where: str) -> None:
    cells = sum((height // s) * (width // s) for s in YOLOX_STRIDES)
    if n != cells:
        raise ModelConfigError(f"{where}: a yolox output has one row per grid cell of strides "
                               f"{list(YOLOX_STRIDES)} ({cells} for a {width}x{height} input), got {n}")


def _class_filter(refs, names: tuple[str, ...], where: str) -> tuple[int, ...]:
    """[detector] classes (names or indices) -> sorted indices; empty = all."""
    out = set()
    for ref in refs:
        if isinstance(ref, int):
            if not 0 <= ref < len(names):
                raise ModelConfigError(f"{where}: detector.classes index {ref} is out of range; "
                                       f"allowed: 0..{len(names) - 1}")
            out.add(ref)
        elif ref in names:
            out.add(names.index(ref))
        else:
            raise ModelConfigError(f"{where}: detector.classes {ref!r} is not a class of the detector; "
                                   f"allowed: {', '.join(names)}")
    return tuple(sorted(out))
