"""Request images -> NumPy arrays the kernel reads (zero-copy for raw pixels)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from roiclass.server.errors import InvalidArgument
from roiclass.v1 import classifier_pb2 as pb

# pixel format -> (channels, bytes per channel)
PIXEL_FORMATS: dict[int, tuple[str, int, int]] = {
    pb.GRAY8: ("GRAY8", 1, 1),
    pb.RGB8: ("RGB8", 3, 1),
    pb.BGR8: ("BGR8", 3, 1),
    pb.RGBA8: ("RGBA8", 4, 1),
    pb.BGRA8: ("BGRA8", 4, 1),
    pb.GRAY16: ("GRAY16", 1, 2),
}
_FORMAT_NAMES = ", ".join(name for name, _, _ in PIXEL_FORMATS.values())
# Pillow mode -> (mode to convert to, our pixel format name)
_PIL_MODES = {
    "L": ("L", "GRAY8"),
    "RGB": ("RGB", "RGB8"),
    "RGBA": ("RGBA", "RGBA8"),
    "I;16": ("I;16", "GRAY16"),
    "I;16L": ("I;16", "GRAY16"),
}


@dataclass(frozen=True)
class DecodedImage:
    array: np.ndarray  # uint8 (H, W[, C]) or uint16 (H, W); rows may be strided
    pixel_format: str

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
        return _encoded_image(image.encoded, max_side)
    raise InvalidArgument.for_field("image", "must hold raw pixels (image.raw) or an encoded file (image.encoded)")


def _raw_image(raw: pb.RawImage, max_side: int) -> DecodedImage:
    if raw.pixel_format not in PIXEL_FORMATS:
        fmt = pb.PixelFormat.Name(raw.pixel_format) if raw.pixel_format in pb.PixelFormat.values() else str(raw.pixel_format)
        raise InvalidArgument.for_field(
            "image.raw.pixel_format", f"unsupported pixel format {fmt}; supported: {_FORMAT_NAMES}"
        )
    name, channels, depth = PIXEL_FORMATS[raw.pixel_format]
    for field_name, value in (("width", raw.width), ("height", raw.height)):
        if value == 0 or value > max_side:
            raise InvalidArgument.for_field(f"image.raw.{field_name}", f"{value} is out of range: allowed 1..{max_side}")
    row_bytes = raw.width * channels * depth
    stride = raw.row_stride or row_bytes
    if stride < row_bytes:
        raise InvalidArgument.for_field(
            "image.raw.row_stride",
            f"{stride} is smaller than width * bytes per pixel = {row_bytes} (0 means packed)",
        )
    if depth == 2 and stride % 2:
        raise InvalidArgument.for_field("image.raw.row_stride", f"{stride} must be even for GRAY16")
    pixels = raw.pixels  # each read of a bytes field may copy it: read once
    needed = stride * (raw.height - 1) + row_bytes
    expected = stride * raw.height
    if not needed <= len(pixels) <= expected:
        raise InvalidArgument.for_field(
            "image.raw.pixels",
            f"has {len(pixels)} bytes; height * row_stride = {raw.height} * {stride} = {expected} expected",
        )
    dtype = np.dtype("<u2") if depth == 2 else np.dtype(np.uint8)
    # A read-only view of the request's bytes: no copy.
    shape = (raw.height, raw.width, channels) if channels > 1 else (raw.height, raw.width)
    strides = (stride, channels * depth, depth) if channels > 1 else (stride, depth)
    array = np.ndarray(shape=shape, dtype=dtype, buffer=pixels, strides=strides)
    return DecodedImage(array, name)


def _encoded_image(data: bytes, max_side: int) -> DecodedImage:
    if not data:
        raise InvalidArgument.for_field("image.encoded", "is empty; send a PNG, JPEG, BMP or TIFF file")
    try:
        img = PILImage.open(io.BytesIO(data))
        # Only the header is read so far: refuse huge images before decoding them.
        if img.width > max_side or img.height > max_side:
            raise InvalidArgument.for_field(
                "image.encoded", f"image is {img.width}x{img.height}; the largest side allowed is {max_side}"
            )
        if img.format not in ("PNG", "JPEG", "BMP", "TIFF"):
            raise InvalidArgument.for_field(
                "image.encoded", f"format {img.format} is not supported; supported: PNG, JPEG, BMP, TIFF"
            )
        img.load()
    except InvalidArgument:
        raise
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise InvalidArgument.for_field(
            "image.encoded", f"cannot be decoded ({exc}); send a PNG, JPEG, BMP or TIFF file"
        ) from None
    target, name = _PIL_MODES.get(img.mode, ("RGBA" if "A" in img.getbands() else "RGB", None))
    if img.mode != target:
        img = img.convert(target)
    if name is None:
        name = "RGBA8" if target == "RGBA" else "RGB8"
    array = np.asarray(img)
    if name == "GRAY16":
        array = array.astype("<u2", copy=False)
    return DecodedImage(array, name)
