"""Anything image-like -> roiclass.v1.Image.

NumPy arrays (and Pillow images) go as raw pixels; bytes go as an encoded
file (PNG/JPEG/BMP/TIFF, decoded by the server); a str/Path is read and sent
encoded. Protobuf needs a `bytes` object, so one copy of the pixels is made;
rows with padding between them (a crop of a larger array) are sent as they
are with `row_stride` rather than packed first. YUV 4:2:0 frames (I420,
NV12: half the bytes of RGB, no conversion on the client) go as they are:
OpenCV's (H * 3 / 2, W) uint8 array with channel_order "I420" / "NV12", or
a decoder's planes with yuv_image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from roiclass.server import formats
from roiclass.v1 import classifier_pb2 as pb

from .errors import InvalidInputError

_UINT8_FORMATS = [f for f in formats.FORMATS if f.dtype == np.uint8 and not f.chroma]
YUV_FORMATS = tuple(f.name for f in formats.FORMATS if f.chroma)  # channel_order of a YUV frame
# GRAY last: the colour orders are what a caller picks among.
CHANNEL_ORDERS = tuple(sorted(dict.fromkeys(f.order for f in _UINT8_FORMATS), key=lambda o: o == "GRAY"))
# The first uint8 format of each band count in the registry is its default.
_DEFAULT_ORDER = {f.channels: f.order for f in reversed(_UINT8_FORMATS)}
# channel_order for N-band arrays: sent as GENERIC (bands by position)
BANDS = formats.GENERIC

# Send padded rows with row_stride only while the padding at most doubles
# the bytes sent; past that, packing the rows first is cheaper on the wire.
_MAX_STRIDE_OVERHEAD = 2.0


def to_image_proto(image: Any, channel_order: str | None = None) -> pb.Image:
    """Builds the request's Image.

    image: np.ndarray (H×W or H×W×1 uint8 = GRAY, H×W×3/4 uint8, H×W uint16 =
    GRAY16; any other H×W×B of uint8, uint16 or float32, B 1..16, goes as
    GENERIC: B bands by position), a PIL.Image, encoded bytes, a file path
    (str / os.PathLike), or a pb.Image / pb.RawImage passed through as is.
    channel_order: what a 3/4-channel array holds, one of CHANNEL_ORDERS, or
    "BANDS" (GENERIC for any array); None = RGB / RGBA (GRAY for one channel).
    """
    if isinstance(image, pb.Image):
        return image
    if isinstance(image, pb.RawImage):
        return pb.Image(raw=image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise InvalidInputError("image", "encoded image bytes are empty")
        return pb.Image(encoded=data)
    if isinstance(image, (str, os.PathLike)):
        return pb.Image(encoded=_read_file(Path(image)))
    if isinstance(image, np.ndarray):
        return pb.Image(raw=array_to_raw(image, channel_order))
    pil_array = _from_pil(image)
    if pil_array is not None:
        return pb.Image(raw=array_to_raw(*pil_array))
    raise InvalidInputError(
        "image",
        f"must be a numpy array, PIL image, encoded bytes or a file path, got {type(image).__name__}",
    )


def array_to_raw(array: np.ndarray, channel_order: str | None = None) -> pb.RawImage:
    """A numpy image -> RawImage (see to_image_proto for what is accepted)."""
    if channel_order is not None and channel_order not in CHANNEL_ORDERS + (BANDS,) + YUV_FORMATS:
        raise InvalidInputError("channel_order", f"must be one of "
                                f"{', '.join(CHANNEL_ORDERS + (BANDS,) + YUV_FORMATS)}, got {channel_order!r}")
    if channel_order in YUV_FORMATS:
        return _yuv_raw(array, formats.by_name(channel_order))
    if _is_generic(array, channel_order):
        return _generic_raw(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3):
        raise InvalidInputError("image", f"array must be H×W or H×W×C, got shape {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise InvalidInputError("image", f"array is empty, shape {array.shape}")
    channels = 1 if array.ndim == 2 else array.shape[2]

    if array.dtype == np.uint16 or array.dtype == np.dtype(">u2"):
        if channels != 1 or channel_order not in (None, "GRAY"):
            raise InvalidInputError(
                "image", f"uint16 arrays must be single-channel H×W (GRAY16), got shape {array.shape}"
            )
        fmt = formats.for_array(array.dtype, channels, "GRAY")
        array = array.astype(fmt.dtype, copy=False)  # the wire format is little-endian
    elif array.dtype == np.uint8:
        order = channel_order or _DEFAULT_ORDER.get(channels)
        fmt = formats.for_array(array.dtype, channels, order)
        if fmt is None:
            allowed = [f.order for f in _UINT8_FORMATS if f.channels == channels]
            raise InvalidInputError(
                "channel_order",
                f"{order!r} does not fit a {channels}-channel array; allowed: {', '.join(allowed) or 'none'}"
                + ("" if allowed else " (use 1, 3 or 4 channels)"),
            )
    else:
        raise InvalidInputError(
            "image", f"array dtype must be uint8, uint16 or float32 (float32 and N-band arrays go as "
            f"GENERIC), got {array.dtype}"
        )

    pixels, row_stride = _pixel_bytes(array)
    return pb.RawImage(
        width=width, height=height, pixel_format=fmt.proto, row_stride=row_stride, pixels=pixels
    )


def yuv_image(pixels: Any, width: int, height: int, pixel_format: str = "I420", row_stride: int = 0) -> pb.Image:
    """A YUV 4:2:0 frame in the proto's layout (the Y plane, rows `row_stride`
    apart, 0 = packed; then I420's U and V planes, rows row_stride / 2 apart,
    or NV12's UV plane) as an Image built in place: a message handed to a
    constructor is merged field by field (upb: ~17 ms for a 1080p RGB frame),
    assigning the bytes is one copy. The server checks the byte count."""
    fmt = formats.by_name(pixel_format)
    if fmt is None or not fmt.chroma:
        raise InvalidInputError("pixel_format", f"must be one of {', '.join(YUV_FORMATS)}, got {pixel_format!r}")
    _check_yuv_size(width, height, fmt)
    image = pb.Image()
    raw = image.raw
    raw.width, raw.height, raw.pixel_format, raw.row_stride = width, height, fmt.proto, row_stride
    raw.pixels = pixels if isinstance(pixels, bytes) else bytes(pixels)
    return image


def _check_yuv_size(width: int, height: int, fmt) -> None:
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise InvalidInputError("image", f"{fmt.name} needs an even width and height, got {width}x{height}")


def _yuv_raw(array: np.ndarray, fmt) -> pb.RawImage:
    size = fmt.size_of(array.shape) if array.dtype == np.uint8 else None
    if size is None:
        raise InvalidInputError("image", f"a {fmt.name} frame is a uint8 (height * 3 / 2, width) array, height "
                                f"and width even (OpenCV's layout), got {array.dtype} {array.shape}")
    height, width = size
    return pb.RawImage(width=width, height=height, pixel_format=fmt.proto,
                       pixels=np.ascontiguousarray(array).tobytes())


def _is_generic(array: np.ndarray, channel_order: str | None) -> bool:
    """GENERIC when asked, for float32, for multi-band uint16, and for uint8
    band counts no named format has."""
    if channel_order == BANDS or array.dtype == np.float32 or array.dtype == np.dtype(">f4"):
        return True
    channels = 1 if array.ndim == 2 else (array.shape[2] if array.ndim == 3 else 0)
    if channel_order is not None:
        return False
    if array.dtype.kind == "u" and array.itemsize == 2:
        return channels > 1
    return array.dtype == np.uint8 and channels not in (0, 1, 3, 4)


def _generic_raw(array: np.ndarray) -> pb.RawImage:
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise InvalidInputError("image", f"array must be a non-empty H×W or H×W×B, got shape {array.shape}")
    bands = 1 if array.ndim == 2 else array.shape[2]
    fmt = formats.for_array(array.dtype, bands, BANDS)
    if fmt is None:
        raise InvalidInputError(
            "image", f"a {bands}-band {array.dtype} array cannot be sent: GENERIC takes 1..{formats.MAX_BANDS} "
            f"bands of uint8, uint16 or float32")
    array = array.astype(fmt.dtype, copy=False)  # the wire is little-endian
    pixels, row_stride = _pixel_bytes(array)
    return pb.RawImage(width=array.shape[1], height=array.shape[0], pixel_format=fmt.proto, bands=bands,
                       sample_type=fmt.sample.proto, row_stride=row_stride, pixels=pixels)


def _pixel_bytes(array: np.ndarray) -> tuple[bytes, int]:
    """(pixels, row_stride): row_stride 0 when the rows were packed."""
    height = array.shape[0]
    pixel_bytes = array.itemsize * (1 if array.ndim == 2 else array.shape[2])
    row = array.shape[1] * pixel_bytes
    if array.flags.c_contiguous:
        return array.tobytes(), 0
    # Rows packed inside (pixels and channels adjacent) but apart from each other?
    inner = array.strides[1:]
    packed_inside = inner[0] == pixel_bytes and (array.ndim == 2 or inner[1] == array.itemsize)
    stride = array.strides[0]
    aligned = stride % array.itemsize == 0  # the server wants even strides for GRAY16
    if packed_inside and aligned and stride >= row and height * stride <= _MAX_STRIDE_OVERHEAD * height * row:
        span = (height - 1) * stride + row
        # One flat view from the first pixel to the last, then a single copy.
        flat = np.lib.stride_tricks.as_strided(array.view(np.uint8), shape=(span,), strides=(1,))
        return flat.tobytes(), stride
    return np.ascontiguousarray(array).tobytes(), 0


def _read_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError("image", f"file not found: {path}") from None
    except IsADirectoryError:
        raise InvalidInputError("image", f"is a directory, not an image file: {path}") from None
    except PermissionError:
        raise InvalidInputError("image", f"cannot read {path}: permission denied") from None
    if not data:
        raise InvalidInputError("image", f"file is empty: {path}")
    return data


def _from_pil(image: Any) -> tuple[np.ndarray, str | None] | None:
    """A PIL.Image -> (array, channel_order), or None when it is not one."""
    try:
        from PIL import Image as PILImage
    except ImportError:  # Pillow is a dependency, but the conversion is optional
        return None
    if not isinstance(image, PILImage.Image):
        return None
    array, fmt = formats.pil_array(image)
    return array, fmt.order
