"""The pixel formats: one record per format, read by the server's decoder,
the engine's kernel arguments and the Python client.

A format is a band count times a sample type (`SampleType`: the NumPy dtype
on the wire and the source units per 0..255 unit, which scales the model's
mean, std and fill for the kernel) plus what the bands mean (`order`: GRAY,
RGB, BGR, RGBA, BGRA). A generic N-band format (GENERIC: the GIS rasters,
1..16 bands of uint8, uint16 or float32) is one more record of the same
shape, built from the request's band count and sample type (`generic`),
with the order BANDS, which names no colours.

Band numbering (a model's extract_bands, Esri ExtractBands; `band_index`):
0-based; band i of a GENERIC image is the i-th sample of a pixel; the named
colour formats are numbered in colour order, not storage order (R 0, G 1,
B 2, A 3: the same picture as RGB8 or BGR8 gives the same tensor).

YUV 4:2:0 (I420, NV12: what video decoders give) is a record too: `chroma`
says how its half-size chroma is stored ("planar": a U then a V plane;
"interleaved": one plane of U, V pairs); its channels and order are those of
the RGB it converts to (bands as RGB8), its array the one OpenCV takes,
(height * 3 / 2, width) uint8 (`shape`), and the engine converts after
resampling (server/engine/yuv.py; the BT.601 constants live there).

Adding a pixel format touches the proto (a PixelFormat value), this
registry (a record), and only for a new sample type or more bands the
kernel (ext/_preprocess.pyx reads uint8, uint16 and float32 samples, 1..16
bands). Importable by the client: it imports nothing of the server.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from roiclass.v1 import classifier_pb2 as pb


@dataclass(frozen=True)
class SampleType:
    dtype: np.dtype  # as sent on the wire (little-endian)
    # source units per 0..255 unit: the type's full range (uint16 0..65535,
    # float32 0..1) is what 0..255 means to a model's mean and std
    scale: float
    proto: int = 0  # roiclass.v1.SampleType value
    name: str = ""  # as in the proto, without SAMPLE_


UINT8 = SampleType(np.dtype(np.uint8), 1.0, pb.SAMPLE_UINT8, "UINT8")
UINT16 = SampleType(np.dtype("<u2"), 257.0, pb.SAMPLE_UINT16, "UINT16")
FLOAT32 = SampleType(np.dtype("<f4"), 1.0 / 255.0, pb.SAMPLE_FLOAT32, "FLOAT32")
SAMPLE_TYPES = (UINT8, UINT16, FLOAT32)
SAMPLE_NAMES = ", ".join(t.name for t in SAMPLE_TYPES)
MAX_BANDS = 16  # the kernel's limit (ext/_params.pxd)
GENERIC = "BANDS"  # the order of a generic record: bands by position, no colours
# Storage index of each band (colour order R, G, B, A) per order.
_STORED = {"GRAY": (0,), "RGB": (0, 1, 2), "BGR": (2, 1, 0), "RGBA": (0, 1, 2, 3), "BGRA": (2, 1, 0, 3)}


@dataclass(frozen=True)
class PixelFormat:
    name: str  # the proto enum's name
    proto: int  # roiclass.v1.PixelFormat value
    channels: int  # interleaved bands per pixel
    sample: SampleType
    order: str  # what the bands hold: "GRAY", "RGB", "BGR", "RGBA" or "BGRA"
    pil_modes: tuple[str, ...] = ()  # Pillow modes read as this format without conversion
    chroma: str = ""  # YUV 4:2:0 only: "planar" (I420) or "interleaved" (NV12)

    @property
    def dtype(self) -> np.dtype:
        return self.sample.dtype

    @property
    def colour(self) -> str:
        """The colour order of the bands, alpha aside: GRAY, RGB, BGR (or BANDS)."""
        return self.order if self.order == GENERIC else self.order.removesuffix("A")

    @property
    def label(self) -> str:
        """For messages: the name, with the band count and type of a generic one."""
        if self.order == GENERIC:
            return f"GENERIC ({self.channels} x {self.sample.name})"
        return self.name

    def band_index(self, band: int) -> int:
        """The stored channel of band `band` (colour order for named formats)."""
        stored = _STORED.get(self.order)
        return band if stored is None else stored[band]

    @property
    def bytes_per_pixel(self) -> int:
        """Of an interleaved format; a YUV 4:2:0 one has 1.5 (frame_bytes)."""
        return self.channels * self.sample.dtype.itemsize

    def frame_bytes(self, width: int, height: int) -> int:
        """Bytes of a packed width x height image (YUV 4:2:0: even sides)."""
        if self.chroma:
            return width * height + 2 * (width // 2) * (height // 2)
        return width * height * self.bytes_per_pixel

    def shape(self, height: int, width: int) -> tuple[int, ...]:
        """The array shape of an image in this format: (H, W) or (H, W, C);
        YUV 4:2:0: (H * 3 / 2, W), the Y rows then the chroma's (OpenCV's)."""
        if self.chroma:
            return (height * 3 // 2, width)
        return (height, width, self.channels) if self.channels > 1 else (height, width)

    def size_of(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        """(height, width) of the picture an array of `shape` holds; None when
        the shape cannot hold one (a YUV array's sides must be even)."""
        if not self.chroma:
            return (shape[0], shape[1]) if len(shape) >= 2 else None
        if len(shape) != 2 or shape[0] % 3 or shape[1] % 2 or not shape[0] or not shape[1]:
            return None
        return (shape[0] * 2 // 3, shape[1])  # 3k rows: 2k of Y (even), k of chroma


# In the proto's order (error messages list them so).
FORMATS: tuple[PixelFormat, ...] = (
    PixelFormat("GRAY8", pb.GRAY8, 1, UINT8, "GRAY", ("L",)),
    PixelFormat("RGB8", pb.RGB8, 3, UINT8, "RGB", ("RGB",)),
    PixelFormat("BGR8", pb.BGR8, 3, UINT8, "BGR"),
    PixelFormat("RGBA8", pb.RGBA8, 4, UINT8, "RGBA", ("RGBA",)),
    PixelFormat("BGRA8", pb.BGRA8, 4, UINT8, "BGRA"),
    PixelFormat("GRAY16", pb.GRAY16, 1, UINT16, "GRAY", ("I;16", "I;16L", "I;16B")),
    PixelFormat("I420", pb.I420, 3, UINT8, "RGB", chroma="planar"),
    PixelFormat("NV12", pb.NV12, 3, UINT8, "RGB", chroma="interleaved"),
)
NAMES = ", ".join(f.name for f in FORMATS)
# The formats whose pixels are one interleaved (H, W, C) array (not YUV 4:2:0's planes).
INTERLEAVED_NAMES = ", ".join(f.name for f in FORMATS if not f.chroma)
_BY_NAME = {f.name: f for f in FORMATS}
_BY_PROTO = {f.proto: f for f in FORMATS}
_BY_PIL_MODE = {mode: f for f in FORMATS for mode in f.pil_modes}


def generic(bands: int, sample: SampleType | str) -> PixelFormat:
    """The GENERIC record of `bands` (1..MAX_BANDS) samples of `sample` (a
    SampleType or its name, "uint16" or "UINT16"); one record per pair."""
    if isinstance(sample, str):
        sample = _SAMPLE_BY_NAME[sample.upper()]
    if not 1 <= bands <= MAX_BANDS:
        raise ValueError(f"bands must be 1..{MAX_BANDS}, got {bands}")
    return _generic(int(bands), sample)


@lru_cache(maxsize=None)
def _generic(bands: int, sample: SampleType) -> PixelFormat:
    return PixelFormat("GENERIC", pb.GENERIC, bands, sample, GENERIC)


def sample_by_proto(value: int) -> SampleType | None:
    return next((t for t in SAMPLE_TYPES if t.proto == value), None)


_SAMPLE_BY_NAME = {t.name: t for t in SAMPLE_TYPES}


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
    """The format of an array with `channels` bands of `dtype` holding `order`
    (BANDS: the generic record)."""
    dtype = np.dtype(dtype).newbyteorder("<")
    if order == GENERIC:
        sample = next((t for t in SAMPLE_TYPES if t.dtype == dtype), None)
        return generic(channels, sample) if sample is not None and 1 <= channels <= MAX_BANDS else None
    return next((f for f in FORMATS if f.sample.dtype == dtype and f.channels == channels
                 and f.order == order and not f.chroma), None)


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
