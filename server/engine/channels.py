"""Kernel arguments (channel map, mean, std, fill) for a source pixel format."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.server import errors, formats
from roiclass.server.formats import PixelFormat
from roiclass.server.models.spec import LUMA_BGR, LUMA_RGB, ModelSpec

FIELD = "image.raw.pixel_format"


@dataclass(frozen=True)
class KernelArgs:
    channel_map: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fill: float


def pixel_format(fmt: PixelFormat | str) -> PixelFormat:
    """The registry's record of `fmt` (a record or, for library callers, a name)."""
    record = formats.resolve(fmt)
    if record is None:
        raise errors.InvalidArgument.for_field(
            FIELD, f"unknown pixel format {fmt!r}; allowed: {formats.NAMES}")
    return record


def channel_map(spec: ModelSpec, fmt: PixelFormat | str) -> tuple[int, ...]:
    fmt = pixel_format(fmt)
    bands = spec.extract_bands  # set for every multi-band model (ModelSpec resolves it)
    if bands is not None:
        bad = [b for b in bands if b < 0 or b >= fmt.channels]
        if bad:
            raise errors.InvalidArgument.for_field(
                FIELD, f"model {spec.name} reads bands {list(bands)} but {fmt.name} has "
                f"{fmt.channels} channel(s) (bands 0..{fmt.channels - 1}); bands out of range: {bad}")
        return bands
    order = spec.channel_order.upper()
    if spec.channels == 1 or order == "GRAY":
        if fmt.colour == "GRAY":
            return (0,)
        return (LUMA_RGB,) if fmt.colour == "RGB" else (LUMA_BGR,)
    if order not in ("RGB", "BGR"):
        raise ValueError(f"model {spec.name}: unsupported channel_order {spec.channel_order!r}")
    if fmt.colour == "GRAY":
        return (0,) * spec.channels
    return (0, 1, 2) if fmt.colour == order else (2, 1, 0)


def kernel_args(spec: ModelSpec, fmt: PixelFormat | str) -> KernelArgs:
    """Channel map plus the spec's per-channel mean/std and its fill in the
    source's units (the sample type's scale)."""
    fmt = pixel_format(fmt)
    scale = fmt.sample.scale
    return KernelArgs(channel_map(spec, fmt), tuple(m * scale for m in spec.mean),
                      tuple(s * scale for s in spec.std), float(spec.fill) * scale)


def check_image(image: np.ndarray, fmt: PixelFormat | str) -> None:
    """The engine's check of an array a library caller hands it with its
    format (images.decode_image builds arrays that fit their format)."""
    fmt = pixel_format(fmt)
    got = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else -1)
    if image.dtype != fmt.dtype or got != fmt.channels:
        raise errors.InvalidArgument.for_field(
            FIELD, f"{fmt.name} needs a {fmt.dtype.name} image with {fmt.channels} channel(s), "
            f"got {image.dtype} with shape {image.shape}")
