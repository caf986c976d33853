"""Kernel arguments (channel map, mean, std, fill) for a source pixel format."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.server import errors
from roiclass.server.models.spec import LUMA_BGR, LUMA_RGB, ModelSpec

# pixel_format -> (source channels, channel order, numpy dtype)
PIXEL_FORMATS: dict[str, tuple[int, str, type]] = {
    "GRAY8": (1, "GRAY", np.uint8),
    "RGB8": (3, "RGB", np.uint8),
    "BGR8": (3, "BGR", np.uint8),
    "RGBA8": (4, "RGB", np.uint8),
    "BGRA8": (4, "BGR", np.uint8),
    "GRAY16": (1, "GRAY", np.uint16),
}
FIELD = "image.raw.pixel_format"


@dataclass(frozen=True)
class KernelArgs:
    channel_map: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fill: float


def model_bands(spec: ModelSpec) -> tuple[int, ...] | None:
    """The source bands of a multi-band model (extract_bands or "bands:3,2,1")."""
    if spec.extract_bands:
        return tuple(spec.extract_bands)
    order = spec.channel_order.strip()
    if order.lower().startswith("bands:"):
        try:
            return tuple(int(b) for b in order[6:].split(",") if b.strip())
        except ValueError:
            raise ValueError(f"channel_order {order!r}: expected bands:<int>,<int>,...") from None
    return None


def channel_map(spec: ModelSpec, pixel_format: str) -> tuple[int, ...]:
    if pixel_format not in PIXEL_FORMATS:
        raise errors.InvalidArgument.for_field(
            FIELD, f"unknown pixel format {pixel_format!r}; allowed: {', '.join(PIXEL_FORMATS)}")
    src_channels, src_order, _ = PIXEL_FORMATS[pixel_format]
    bands = model_bands(spec)
    if bands is not None:
        bad = [b for b in bands if b < 0 or b >= src_channels]
        if bad:
            raise errors.InvalidArgument.for_field(
                FIELD, f"model {spec.name} reads bands {list(bands)} but {pixel_format} has "
                f"{src_channels} channel(s) (bands 0..{src_channels - 1}); bands out of range: {bad}")
        return bands
    order = spec.channel_order.upper()
    if spec.channels == 1 or order == "GRAY":
        if src_order == "GRAY":
            return (0,)
        return (LUMA_RGB,) if src_order == "RGB" else (LUMA_BGR,)
    if order not in ("RGB", "BGR"):
        raise ValueError(f"model {spec.name}: unsupported channel_order {spec.channel_order!r}")
    if src_order == "GRAY":
        return (0,) * spec.channels
    return (0, 1, 2) if src_order == order else (2, 1, 0)


def kernel_args(spec: ModelSpec, pixel_format: str) -> KernelArgs:
    """Channel map plus mean/std/fill in the source's units (x257 for 16-bit)."""
    cmap = channel_map(spec, pixel_format)
    scale = 257.0 if PIXEL_FORMATS[pixel_format][2] is np.uint16 else 1.0
    n = len(cmap)
    mean = _per_channel(spec.mean, n, "mean", spec)
    std = _per_channel(spec.std, n, "std", spec)
    return KernelArgs(cmap, tuple(m * scale for m in mean), tuple(s * scale for s in std),
                      float(spec.fill) * scale)


def _per_channel(values: tuple[float, ...], n: int, what: str, spec: ModelSpec) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == n:
        return values
    if len(values) == 1 or (n == 1 and len(set(values)) == 1):
        return (values[0],) * n
    if n == 1:
        # A gray model configured with 3 values: their mean is the luma's.
        return (sum(values) / len(values),)
    raise ValueError(f"model {spec.name}: {what} has {len(values)} values for {n} input channels")


def check_image(image: np.ndarray, pixel_format: str) -> None:
    """Cheap checks that the array matches its declared pixel format."""
    if pixel_format not in PIXEL_FORMATS:
        raise errors.InvalidArgument.for_field(
            FIELD, f"unknown pixel format {pixel_format!r}; allowed: {', '.join(PIXEL_FORMATS)}")
    channels, _, dtype = PIXEL_FORMATS[pixel_format]
    got = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else -1)
    if image.dtype != dtype or got != channels:
        raise errors.InvalidArgument.for_field(
            FIELD, f"{pixel_format} needs a {np.dtype(dtype).name} image with {channels} channel(s), "
            f"got {image.dtype} with shape {image.shape}")
