"""A model given the way imgproxy's classification is configured.

  --onnx net.onnx --classes classes.txt --net-size 224
  --normalization none|half|full|imagenet --layout nchw|nhwc --threshold 0.5

As in imgproxy: classes one per line, a square input of net-size pixels,
`half` = [0, 1], `full` = [-1, 1], threshold = the minimum confidence kept.
Our own normalization names (unit, symmetric) are accepted as well. Unset
net-size and layout come from the ONNX input shape; whether outputs are
logits is found by running the model once.
"""
from __future__ import annotations

from pathlib import Path

from .builder import build_spec, read_classes_file
from .errors import ModelConfigError
from .normalization import canonical
from .spec import ModelSpec


def spec_from_imgproxy(
    onnx: Path,
    classes: Path | None,
    net_size: int | None,
    normalization: str,
    layout: str | None,
    threshold: float,
    name: str | None = None,
) -> ModelSpec:
    onnx = Path(onnx)
    where = f"--onnx {onnx}"
    norm = canonical(normalization, f"{where}: --normalization")
    if norm == "custom":
        raise ModelConfigError(f"{where}: --normalization custom needs mean/std; allowed here: none, half, full, imagenet, unit, symmetric")
    if layout is not None and str(layout).upper() not in ("NCHW", "NHWC"):
        raise ModelConfigError(f"{where}: --layout {layout!r} is not allowed; allowed: nchw, nhwc")
    if net_size is not None and (not isinstance(net_size, int) or net_size <= 0):
        raise ModelConfigError(f"{where}: --net-size must be a positive integer, got {net_size!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ModelConfigError(f"{where}: --threshold {threshold} is out of range; allowed: [0, 1]")
    names = read_classes_file(Path(classes), f"{where}: --classes") if classes is not None else None
    return build_spec(
        onnx,
        name=name or onnx.stem,
        version="1",
        where=where,
        fmt="imgproxy",
        source=onnx,
        classes=names,
        input_width=net_size,
        input_height=net_size,
        layout=layout,
        normalization=norm,
        min_confidence=float(threshold),
    )
