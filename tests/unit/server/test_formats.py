"""The pixel-format registry: one record per proto format, looked up every way its users need."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from roiclass.server import formats
from roiclass.v1 import classifier_pb2 as pb


def test_every_proto_format_has_one_record_in_proto_order():
    values = [v for v in pb.PixelFormat.values() if v != pb.PIXEL_FORMAT_UNSPECIFIED]
    assert [f.proto for f in formats.FORMATS] == values
    assert [f.name for f in formats.FORMATS] == [pb.PixelFormat.Name(v) for v in values]
    assert formats.NAMES == "GRAY8, RGB8, BGR8, RGBA8, BGRA8, GRAY16"


@pytest.mark.parametrize("name, channels, dtype, scale, colour, bytes_per_pixel", [
    ("GRAY8", 1, np.uint8, 1.0, "GRAY", 1), ("RGB8", 3, np.uint8, 1.0, "RGB", 3),
    ("BGR8", 3, np.uint8, 1.0, "BGR", 3), ("RGBA8", 4, np.uint8, 1.0, "RGB", 4),
    ("BGRA8", 4, np.uint8, 1.0, "BGR", 4), ("GRAY16", 1, "<u2", 257.0, "GRAY", 2),
])
def test_record_fields(name, channels, dtype, scale, colour, bytes_per_pixel):
    fmt = formats.by_name(name)
    assert (fmt.channels, fmt.dtype, fmt.sample.scale) == (channels, np.dtype(dtype), scale)
    assert (fmt.colour, fmt.bytes_per_pixel) == (colour, bytes_per_pixel)
    assert formats.by_proto(fmt.proto) is fmt and formats.resolve(name) is fmt and formats.resolve(fmt) is fmt
    assert fmt.shape(5, 7) == ((5, 7) if channels == 1 else (5, 7, channels))


def test_unknown_formats_are_none_and_named_by_number():
    assert formats.by_name("RGB9") is None and formats.resolve("RGB9") is None
    assert formats.by_proto(pb.PIXEL_FORMAT_UNSPECIFIED) is None and formats.by_proto(77) is None
    assert formats.proto_name(77) == "77" and formats.proto_name(pb.RGB8) == "RGB8"


def test_for_array_matches_dtype_bands_and_order():
    assert formats.for_array(np.dtype(">u2"), 1, "GRAY").name == "GRAY16"  # any byte order
    assert formats.for_array(np.uint8, 4, "BGRA").name == "BGRA8"
    assert formats.for_array(np.uint8, 3, "GRAY") is None
    assert formats.for_array(np.uint16, 3, "RGB") is None


def _pil(mode: str, size=(3, 2)) -> Image.Image:
    return Image.new(mode, size)


@pytest.mark.parametrize("mode, name, shape", [
    ("L", "GRAY8", (2, 3)), ("RGB", "RGB8", (2, 3, 3)), ("RGBA", "RGBA8", (2, 3, 4)),
    ("I;16", "GRAY16", (2, 3)), ("LA", "RGBA8", (2, 3, 4)), ("P", "RGB8", (2, 3, 3)),
    ("CMYK", "RGB8", (2, 3, 3)), ("1", "RGB8", (2, 3, 3)),
])
def test_pil_modes_read_as_is_or_converted(mode, name, shape):
    array, fmt = formats.pil_array(_pil(mode))
    assert fmt.name == name and array.shape == shape and array.dtype == fmt.dtype


def test_big_endian_16_bit_reads_as_little_endian_gray16():
    values = np.array([[1, 256], [513, 65535]], np.uint16)
    image = Image.frombytes("I;16B", (2, 2), values.astype(">u2").tobytes())
    array, fmt = formats.pil_array(image)
    assert fmt.name == "GRAY16" and array.dtype == np.dtype("<u2")
    np.testing.assert_array_equal(array, values)
