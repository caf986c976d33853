"""The pixel formats: one record per format, read by the server's decoder,
the engine's kernel arguments and the Python client.

A format is a band count times a sample type (`SampleType`: the NumPy dtype
on the wire and the source units per 0..255 unit, which scales the model's
mean, std and fill for the kernel) plus what the bands mean (`order`: GRAY,
RGB, BGR, RGBA, BGRA). A generic N-band format (the GIS rasters) is one more
record of the same shape, built from the request's band count and sample
type, with an order that names no colours; nothing else here changes.

Adding a pixel format touches the proto (a PixelFormat value), this
registry (a record), and only for a new sample type or band count the
kernel (ext/_preprocess.pyx reads uint8 and uint16 samples, 1, 3 or 4
bands). Importable by the client: it imports nothing of the server.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.v1 import classifier_pb2 as pb


@dataclass(frozen=True)
class SampleType:
    dtype: np.dtype  # as sent on the wire (little-endian)
    scale: float  # source units per 0..255 unit: 257 maps 0..255 onto 0..65535


UINT8 = SampleType(np.dtype(np.uint8), 1.0)
UINT16 = SampleType(np.dtype("<u2"), 257.0)


@dataclass(frozen=True)
class PixelFormat:
    name: str  # the proto enum's name
    proto: int  # roiclass.v1.PixelFormat value
    channels: int  # interleaved bands per pixel
    sample: SampleType
    order: str  # what the bands hold: "GRAY", "RGB", "BGR", "RGBA" or "BGRA"
    pil_modes: tuple[str, ...] = ()  # Pillow modes read as this format without conversion

    @property
    def dtype(self) -> np.dtype:
        return self.sample.dtype

    @property
    def colour(self) -> str:
        """The colour order of the bands, alpha aside: GRAY, RGB or BGR."""
        return self.order.removesuffix("A")  # alpha is the last band

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.sample.dtype.itemsize

    def shape(self, height: int, width: int) -> tuple[int, ...]:
        """The array shape of an image in this format: (H, W) or (H, W, C)."""
        return (height, width, self.channels) if self.channels > 1 else (height, width)


# In the proto's order (error messages list them so).
FORMATS: tuple[PixelFormat, ...] = (
    PixelFormat("GRAY8", pb.GRAY8, 1, UINT8, "GRAY", ("L",)),
    PixelFormat("RGB8", pb.RGB8, 3, UINT8, "RGB", ("RGB",)),
    PixelFormat("BGR8", pb.BGR8, 3, UINT8, "BGR"),
    PixelFormat("RGBA8", pb.RGBA8, 4, UINT8, "RGBA", ("RGBA",)),
    PixelFormat("BGRA8", pb.BGRA8, 4, UINT8, "BGRA"),
    PixelFormat("GRAY16", pb.GRAY16, 1, UINT16, "GRAY", ("I;16", "I;16L", "I;16B")),
)
NAMES = ", ".join(f.name for f in FORMATS)
_BY_NAME = {f.name: f for f in FORMATS}
_BY_PROTO = {f.proto: f for f in FORMATS}
_BY_PIL_MODE = {mode: f for f in FORMATS for mode in f.pil_modes}


def by_name(name: str) -> PixelFormat | None:
    return _BY_NAME.get(name)


def by_proto(value: int) -> PixelFormat | None:
    return _BY_PROTO.get(value)


def resolve(pixel_format: PixelFormat | str) -> PixelFormat | None:
    """A record as it is, or the record of a format name; None when unknown."""
    return pixel_format if isinstance(pixel_format, PixelFormat) else _BY_NAME.get(pixel_format)


def proto_name(value: int) -> str:
    """The enum name of a proto value, or the number when the proto has none."""
    return pb.PixelFormat.Name(value) if value in pb.PixelFormat.values() else str(value)


def for_array(dtype: np.dtype, channels: int, order: str) -> PixelFormat | None:
    """The format of an array with `channels` bands of `dtype` holding `order`."""
    dtype = np.dtype(dtype).newbyteorder("<")
    return next((f for f in FORMATS if f.sample.dtype == dtype and f.channels == channels
                 and f.order == order), None)


def pil_format(image) -> PixelFormat:
    """The format a PIL image (its header is enough) decodes to: its mode's
    record, else RGBA8 when it has alpha, RGB8 otherwise."""
    fmt = _BY_PIL_MODE.get(image.mode)
    if fmt is None:
        fmt = _BY_NAME["RGBA8" if "A" in image.getbands() else "RGB8"]
    return fmt


def pil_array(image) -> tuple[np.ndarray, PixelFormat]:
    """A loaded PIL image -> (array, format) in pil_format(image), converted if needed."""
    fmt = pil_format(image)
    if image.mode not in fmt.pil_modes:
        image = image.convert(fmt.pil_modes[0])
    return np.asarray(image).astype(fmt.dtype, copy=False), fmt
