"""Request images -> (array, PixelFormat) the kernel reads (zero-copy for raw pixels)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image as PILImage

from roiclass.server import formats
from roiclass.server.errors import InvalidArgument
from roiclass.server.formats import PixelFormat
from roiclass.v1 import classifier_pb2 as pb

ENCODINGS = ("PNG", "JPEG", "BMP", "TIFF")
_ENCODING_NAMES = "PNG, JPEG, BMP or TIFF"


class DecodedImage(NamedTuple):
    array: np.ndarray  # (H, W[, C]) of pixel_format.dtype; rows may be strided
    pixel_format: PixelFormat

    @property
    def width(self) -> int:
        return self.array.shape[1]

    @property
    def height(self) -> int:
        return self.array.shape[0]


def decode_image(image: pb.Image, max_side: int) -> DecodedImage:
    kind = image.WhichOneof("data")
    if kind == "raw":
        return _raw_image(image.raw, max_side)
    if kind == "encoded":
        return _encoded_image(image.encoded, max_side, "image.encoded")
    raise InvalidArgument.for_field("image", "must hold raw pixels (image.raw) or an encoded file (image.encoded)")


def decode_file(path: Path, max_side: int) -> DecodedImage:
    """An image file (a model's golden image) through the path encoded requests take."""
    return _encoded_image(Path(path).read_bytes(), max_side, str(path))


def _raw_image(raw: pb.RawImage, max_side: int) -> DecodedImage:
    fmt = formats.by_proto(raw.pixel_format)
    if fmt is None:
        raise InvalidArgument.for_field(
            "image.raw.pixel_format",
            f"unsupported pixel format {formats.proto_name(raw.pixel_format)}; supported: {formats.NAMES}",
        )
    for field_name, value in (("width", raw.width), ("height", raw.height)):
        if value == 0 or value > max_side:
            raise InvalidArgument.for_field(f"image.raw.{field_name}", f"{value} is out of range: allowed 1..{max_side}")
    row_bytes = raw.width * fmt.bytes_per_pixel
    stride = raw.row_stride or row_bytes
    if stride < row_bytes:
        raise InvalidArgument.for_field(
            "image.raw.row_stride",
            f"{stride} is smaller than width * bytes per pixel = {row_bytes} (0 means packed)",
        )
    itemsize = fmt.dtype.itemsize
    if stride % itemsize:
        raise InvalidArgument.for_field("image.raw.row_stride", f"{stride} must be a multiple of {itemsize} "
                                        f"for {fmt.name}")
    pixels = raw.pixels  # each read of a bytes field may copy it: read once
    needed = stride * (raw.height - 1) + row_bytes
    expected = stride * raw.height
    if not needed <= len(pixels) <= expected:
        raise InvalidArgument.for_field(
            "image.raw.pixels",
            f"has {len(pixels)} bytes; height * row_stride = {raw.height} * {stride} = {expected} expected",
        )
    # A read-only view of the request's bytes: no copy.
    shape = fmt.shape(raw.height, raw.width)
    strides = (stride, fmt.bytes_per_pixel, itemsize)[:len(shape)]
    return DecodedImage(np.ndarray(shape=shape, dtype=fmt.dtype, buffer=pixels, strides=strides), fmt)


def _encoded_image(data: bytes, max_side: int, field: str) -> DecodedImage:
    if not data:
        raise InvalidArgument.for_field(field, f"is empty; send a {_ENCODING_NAMES} file")
    try:
        img = PILImage.open(io.BytesIO(data))
        # Only the header is read so far: refuse huge images before decoding them.
        if img.width > max_side or img.height > max_side:
            raise InvalidArgument.for_field(
                field, f"image is {img.width}x{img.height}; the largest side allowed is {max_side}"
            )
        if img.format not in ENCODINGS:
            raise InvalidArgument.for_field(
                field, f"format {img.format} is not supported; supported: {', '.join(ENCODINGS)}"
            )
        img.load()
    except InvalidArgument:
        raise
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise InvalidArgument.for_field(field, f"cannot be decoded ({exc}); send a {_ENCODING_NAMES} file") from None
    return DecodedImage(*formats.pil_array(img))
