"""Request images -> (array, PixelFormat) the kernel reads (zero-copy for raw pixels)."""
from __future__ import annotations

import io
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ImageLimits:
    """What one request's image may cost, checked from its header (encoded) or
    its declared size (raw) before any pixel is decoded or read."""
    max_side: int = 16384
    max_pixels: int = 64_000_000  # --max-image-pixels: a 12000x12000 PNG bomb is 144 Mpx
    max_bytes: int = 256 << 20  # --max-decoded-mb: the decoded array

    def check(self, width: int, height: int, fmt: PixelFormat, field: str) -> None:
        pixels = width * height
        if pixels > self.max_pixels:
            raise InvalidArgument.for_field(
                field, f"image is {width}x{height} = {pixels} pixels; at most {self.max_pixels} "
                f"are allowed (--max-image-pixels)")
        size = fmt.frame_bytes(width, height)
        if size > self.max_bytes:
            raise InvalidArgument.for_field(
                field, f"image is {width}x{height} {fmt.label} = {size} bytes decoded; at most "
                f"{self.max_bytes} are allowed (--max-decoded-mb)")


class DecodedImage(NamedTuple):
    array: np.ndarray  # (H, W[, C]) of pixel_format.dtype; rows may be strided
    pixel_format: PixelFormat

    @property
    def width(self) -> int:
        return self.array.shape[1]

    @property
    def height(self) -> int:  # a YUV 4:2:0 array has the chroma's rows below the picture's
        return self.array.shape[0] * 2 // 3 if self.pixel_format.chroma else self.array.shape[0]


def decode_image(image: pb.Image, limits: ImageLimits) -> DecodedImage:
    kind = image.WhichOneof("data")
    if kind == "raw":
        return _raw_image(image.raw, limits)
    if kind == "encoded":
        return _encoded_image(image.encoded, limits, "image.encoded")
    raise InvalidArgument.for_field("image", "must hold raw pixels (image.raw) or an encoded file (image.encoded)")


def decode_file(path: Path, limits: ImageLimits = ImageLimits()) -> DecodedImage:
    """An image file (a model's golden image) through the path encoded requests take."""
    return _encoded_image(Path(path).read_bytes(), limits, str(path))


def _raw_format(raw: pb.RawImage) -> PixelFormat:
    """The record of a raw image: a named format, or GENERIC's bands x sample type."""
    if raw.pixel_format == pb.GENERIC:
        if not 1 <= raw.bands <= formats.MAX_BANDS:
            raise InvalidArgument.for_field(
                "image.raw.bands", f"{raw.bands} is out of range for GENERIC: allowed 1..{formats.MAX_BANDS}")
        sample = formats.sample_by_proto(raw.sample_type)
        if sample is None:
            raise InvalidArgument.for_field(
                "image.raw.sample_type", f"{raw.sample_type} is not a sample type for GENERIC; "
                f"allowed: {formats.SAMPLE_NAMES} (SAMPLE_<name>)")
        return formats.generic(raw.bands, sample)
    fmt = formats.by_proto(raw.pixel_format)
    if fmt is None:
        raise InvalidArgument.for_field(
            "image.raw.pixel_format",
            f"unsupported pixel format {formats.proto_name(raw.pixel_format)}; supported: {formats.NAMES}, "
            "GENERIC (with bands and sample_type)",
        )
    if raw.bands or raw.sample_type:
        raise InvalidArgument.for_field(
            "image.raw.bands", f"bands and sample_type are for GENERIC only; {fmt.name} has its own")
    return fmt


def _raw_image(raw: pb.RawImage, limits: ImageLimits) -> DecodedImage:
    max_side = limits.max_side
    fmt = _raw_format(raw)
    for field_name, value in (("width", raw.width), ("height", raw.height)):
        if value == 0 or value > max_side:
            raise InvalidArgument.for_field(f"image.raw.{field_name}", f"{value} is out of range: allowed 1..{max_side}")
    limits.check(raw.width, raw.height, fmt, "image.raw")
    if fmt.chroma:
        return _yuv_image(raw, fmt)
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
                                        f"for {fmt.label}")
    pixels = raw.pixels  # each read of a bytes field may copy it: read once
    needed = stride * (raw.height - 1) + row_bytes
    expected = stride * raw.height
    if not needed <= len(pixels) <= expected:
        raise InvalidArgument.for_field(
            "image.raw.pixels",
            f"has {len(pixels)} bytes; height * row_stride = {raw.height} * {stride} = {expected} expected",
        )
    # A read-only view of the request's bytes: no copy (a one-band GENERIC is (H, W)).
    shape = fmt.shape(raw.height, raw.width)
    strides = (stride, fmt.bytes_per_pixel, itemsize)[:len(shape)]
    return DecodedImage(np.ndarray(shape=shape, dtype=fmt.dtype, buffer=pixels, strides=strides), fmt)


def _yuv_image(raw: pb.RawImage, fmt: PixelFormat) -> DecodedImage:
    """A YUV 4:2:0 frame as OpenCV's (H * 3 / 2, W) array: a view of the
    request's bytes, except an I420 frame with padded rows (its chroma rows
    are half as far apart as the Y rows: packed, one copy of 1.5 bytes a pixel)."""
    for field_name, value in (("width", raw.width), ("height", raw.height)):
        if value % 2:
            raise InvalidArgument.for_field(f"image.raw.{field_name}",
                                            f"{value} is odd; {fmt.name} needs an even width and height")
    width, height = raw.width, raw.height
    stride = raw.row_stride or width
    planar = fmt.chroma == "planar"
    if stride < width or (planar and stride % 2):
        raise InvalidArgument.for_field(
            "image.raw.row_stride", f"{stride} is not allowed for {fmt.name}: the Y plane's row stride, "
            f">= width = {width}" + (", even (the U and V planes' is half of it)" if planar else "")
            + " (0 means packed)")
    pixels = raw.pixels  # each read of a bytes field may copy it: read once
    expected = stride * height * 3 // 2
    # The last chroma row's padding may be left off.
    needed = expected - ((stride - width) // 2 if planar else stride - width)
    if not needed <= len(pixels) <= expected:
        raise InvalidArgument.for_field(
            "image.raw.pixels", f"has {len(pixels)} bytes; {fmt.name} {width}x{height} with row_stride "
            f"{stride} takes {expected} (height * row_stride * 3 / 2)")
    buffer = np.frombuffer(pixels, np.uint8)
    rows = height * 3 // 2
    if not planar or stride == width:  # NV12's chroma rows are as far apart as its Y rows
        return DecodedImage(np.ndarray((rows, width), np.uint8, buffer, strides=(stride, 1)), fmt)
    packed = np.empty((rows, width), np.uint8)
    packed[:height] = np.ndarray((height, width), np.uint8, buffer, strides=(stride, 1))
    half = stride // 2
    chroma = np.ndarray((height, width // 2), np.uint8, buffer, stride * height, strides=(half, 1))
    packed[height:].reshape(height, width // 2)[:] = chroma  # U rows, then V rows
    return DecodedImage(packed, fmt)


def _encoded_image(data: bytes, limits: ImageLimits, field: str) -> DecodedImage:
    max_side = limits.max_side
    if not data:
        raise InvalidArgument.for_field(field, f"is empty; send a {_ENCODING_NAMES} file")
    try:
        img = PILImage.open(io.BytesIO(data))
        # Only the header is read so far: refuse huge images before decoding them.
        if img.width > max_side or img.height > max_side:
            raise InvalidArgument.for_field(
                field, f"image is {img.width}x{img.height}; the largest side allowed is {max_side}"
            )
        limits.check(img.width, img.height, formats.pil_format(img), field)
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
