"""The pixel-format registry: one record per proto format, looked up every way its users need."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from roiclass.server import formats
from roiclass.v1 import classifier_pb2 as pb


def test_every_proto_format_has_one_record_in_proto_order():
    values = [v for v in pb.PixelFormat.values() if v not in (pb.PIXEL_FORMAT_UNSPECIFIED, pb.GENERIC)]
    assert [f.proto for f in formats.FORMATS] == values
    assert [f.name for f in formats.FORMATS] == [pb.PixelFormat.Name(v) for v in values]
    assert formats.NAMES == "GRAY8, RGB8, BGR8, RGBA8, BGRA8, GRAY16, I420, NV12"


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


def test_every_proto_sample_type_has_one_record():
    values = [v for v in pb.SampleType.values() if v != pb.SAMPLE_TYPE_UNSPECIFIED]
    assert [t.proto for t in formats.SAMPLE_TYPES] == values
    assert ["SAMPLE_" + t.name for t in formats.SAMPLE_TYPES] == [pb.SampleType.Name(v) for v in values]
    assert [formats.sample_by_proto(v) for v in values] == list(formats.SAMPLE_TYPES)
    assert formats.sample_by_proto(0) is None


@pytest.mark.parametrize("sample, dtype, scale", [("uint8", np.uint8, 1.0), ("UINT16", "<u2", 257.0),
                                                  ("float32", "<f4", 1 / 255)])
@pytest.mark.parametrize("bands", [1, 4, 16])
def test_generic_records_are_one_shape_for_any_band_count(sample, dtype, scale, bands):
    fmt = formats.generic(bands, sample)
    assert (fmt.name, fmt.proto, fmt.channels, fmt.dtype, fmt.order) == ("GENERIC", pb.GENERIC, bands,
                                                                        np.dtype(dtype), "BANDS")
    assert fmt.sample.scale == pytest.approx(scale) and fmt.bytes_per_pixel == bands * np.dtype(dtype).itemsize
    assert formats.for_array(np.dtype(dtype), bands, "BANDS") == fmt
    assert formats.generic(bands, fmt.sample) is fmt  # one record per (bands, type)
    assert [fmt.band_index(b) for b in range(bands)] == list(range(bands))
    assert fmt.label == f"GENERIC ({bands} x {fmt.sample.name})"


def test_generic_refuses_band_counts_the_kernel_cannot_read():
    for bands in (0, 17):
        with pytest.raises(ValueError, match="1..16"):
            formats.generic(bands, "uint8")
    assert formats.for_array(np.float64, 3, "BANDS") is None


@pytest.mark.parametrize("name, stored", [("GRAY8", [0]), ("RGB8", [0, 1, 2]), ("BGR8", [2, 1, 0]),
                                          ("RGBA8", [0, 1, 2, 3]), ("BGRA8", [2, 1, 0, 3]), ("GRAY16", [0])])
def test_named_formats_number_their_bands_in_colour_order(name, stored):
    fmt = formats.by_name(name)
    assert [fmt.band_index(b) for b in range(fmt.channels)] == stored
