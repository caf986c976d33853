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
    """The kernel's source channel per model input channel. Bands are numbered
    as formats.PixelFormat.band_index says: by position in a GENERIC image, in
    colour order (R, G, B, A) in the named ones, whatever their storage order."""
    fmt = pixel_format(fmt)
    bands = spec.extract_bands  # set for every multi-band model (ModelSpec resolves it)
    if bands is not None:
        bad = [b for b in bands if b < 0 or b >= fmt.channels]
        if bad:
            raise errors.InvalidArgument.for_field(
                FIELD, f"model {spec.name} reads bands {list(bands)} but {fmt.label} has "
                f"{fmt.channels} band(s) (bands 0..{fmt.channels - 1}); bands out of range: {bad}")
        return tuple(fmt.band_index(b) for b in bands)
    order = spec.channel_order.upper()
    colour = fmt.colour
    if colour == formats.GENERIC:  # bands by position: 1 band is gray, 3 or more start R, G, B
        if fmt.channels == 2:
            raise errors.InvalidArgument.for_field(
                FIELD, f"model {spec.name} reads {order} but {fmt.label} has 2 bands; send 1 band, "
                "3 or more, or give the model extract_bands")
        colour = "GRAY" if fmt.channels == 1 else "RGB"
    if spec.channels == 1 or order == "GRAY":
        if colour == "GRAY":
            return (0,)
        return (LUMA_RGB,) if colour == "RGB" else (LUMA_BGR,)
    if order not in ("RGB", "BGR"):
        raise ValueError(f"model {spec.name}: unsupported channel_order {spec.channel_order!r}")
    if colour == "GRAY":
        return (0,) * spec.channels
    return (0, 1, 2) if colour == order else (2, 1, 0)


def kernel_args(spec: ModelSpec, fmt: PixelFormat | str) -> KernelArgs:
    """Channel map plus the spec's per-channel mean/std and its fill in the
    source's units: the sample type's scale (0..255 is its full range), or
    the raw values as they are for a spec whose statistics are raw
    (ModelSpec.raw_units: Esri NormalizationStats)."""
    fmt = pixel_format(fmt)
    scale = 1.0 if spec.raw_units else fmt.sample.scale
    return KernelArgs(channel_map(spec, fmt), tuple(m * scale for m in spec.mean),
                      tuple(s * scale for s in spec.std), float(spec.fill) * scale)


def check_image(image: np.ndarray, fmt: PixelFormat | str) -> None:
    """The engine's check of an array a library caller hands it with its
    format (images.decode_image builds arrays that fit their format)."""
    fmt = pixel_format(fmt)
    if fmt.chroma:  # YUV 4:2:0: OpenCV's (H * 3 / 2, W) array
        if image.dtype != np.uint8 or fmt.size_of(image.shape) is None:
            raise errors.InvalidArgument.for_field(
                FIELD, f"{fmt.name} needs a uint8 (height * 3 / 2, width) array, height and width even, "
                f"got {image.dtype} with shape {image.shape}")
        return
    got = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else -1)
    if image.dtype != fmt.dtype or got != fmt.channels:
        raise errors.InvalidArgument.for_field(
            FIELD, f"{fmt.label} needs a {fmt.dtype.name} image with {fmt.channels} channel(s), "
            f"got {image.dtype} with shape {image.shape}")
