"""Request images -> (array, PixelFormat) without a server: views, strides, and
each wrong field an InvalidArgument naming it."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from roiclass.server import formats
from roiclass.server.errors import InvalidArgument
from roiclass.server.images import ImageLimits, decode_file, decode_image
from roiclass.v1 import classifier_pb2 as pb

MAX_SIDE = 64
LIMITS = ImageLimits(max_side=MAX_SIDE)
RGB = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


def raw(**fields) -> pb.Image:
    base = dict(width=10, height=6, pixel_format=pb.RGB8, pixels=RGB.tobytes())
    base.update(fields)
    return pb.Image(raw=pb.RawImage(**base))


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def field_of(call) -> str:
    with pytest.raises(InvalidArgument) as err:
        call()
    assert len(err.value.violations) == 1
    assert err.value.message.startswith(err.value.violations[0].field + ": ")
    return err.value.violations[0].field


def test_raw_pixels_are_a_read_only_view_with_their_format():
    array, fmt = decode_image(raw(), LIMITS)
    assert fmt is formats.by_name("RGB8")
    assert not array.flags.writeable and not array.flags.owndata
    np.testing.assert_array_equal(array, RGB)


def test_row_stride_padding_is_skipped():
    padded = np.zeros((6, 37), np.uint8)
    padded[:, :30] = RGB.reshape(6, 30)
    image = decode_image(raw(row_stride=37, pixels=padded.tobytes()[:-7]), LIMITS)
    assert image.array.strides == (37, 3, 1) and (image.width, image.height) == (10, 6)
    np.testing.assert_array_equal(image.array, RGB)


def test_gray16_is_little_endian_two_dimensional():
    values = np.arange(60, dtype=np.uint16).reshape(6, 10) * 1000
    image = decode_image(raw(pixel_format=pb.GRAY16, pixels=values.astype("<u2").tobytes()), LIMITS)
    assert image.pixel_format.name == "GRAY16" and image.array.dtype == np.dtype("<u2")
    np.testing.assert_array_equal(image.array, values)


@pytest.mark.parametrize("image, field", [
    (pb.Image(), "image"),
    (raw(pixel_format=pb.PIXEL_FORMAT_UNSPECIFIED), "image.raw.pixel_format"),
    (raw(pixel_format=77), "image.raw.pixel_format"),
    (raw(width=0), "image.raw.width"),
    (raw(height=MAX_SIDE + 1), "image.raw.height"),
    (raw(row_stride=29), "image.raw.row_stride"),
    (raw(pixel_format=pb.GRAY16, width=5, row_stride=11, pixels=bytes(11 * 6)), "image.raw.row_stride"),
    (raw(pixels=RGB.tobytes()[:-1]), "image.raw.pixels"),
    (raw(pixels=RGB.tobytes() + b"\0"), "image.raw.pixels"),
    (pb.Image(encoded=b""), "image.encoded"),
    (pb.Image(encoded=b"\x89PNG not really"), "image.encoded"),
    (pb.Image(encoded=encoded(np.zeros((MAX_SIDE + 1, 2), np.uint8))), "image.encoded"),
    (pb.Image(encoded=encoded(np.zeros((4, 4, 3), np.uint8), "GIF")), "image.encoded"),
])
def test_each_wrong_field_is_named(image, field):
    assert field_of(lambda: decode_image(image, LIMITS)) == field


def test_unsupported_format_lists_the_registry():
    with pytest.raises(InvalidArgument, match="unsupported pixel format 77; supported: GRAY8, RGB8"):
        decode_image(raw(pixel_format=77), LIMITS)


@pytest.mark.parametrize("array, name", [
    (RGB, "RGB8"), (RGB[..., 0], "GRAY8"), (np.dstack([RGB, RGB[..., :1]]), "RGBA8"),
    (np.arange(60, dtype=np.uint16).reshape(6, 10) * 999, "GRAY16"),
])
def test_encoded_files_decode_to_their_format(array, name):
    image = decode_image(pb.Image(encoded=encoded(array)), LIMITS)
    assert image.pixel_format.name == name
    np.testing.assert_array_equal(image.array, array)


def test_a_file_decodes_as_the_same_bytes_sent_encoded(tmp_path):
    path = tmp_path / "golden.png"
    path.write_bytes(encoded(RGB))
    from_file = decode_file(path, LIMITS)
    sent = decode_image(pb.Image(encoded=path.read_bytes()), LIMITS)
    assert from_file.pixel_format is sent.pixel_format
    np.testing.assert_array_equal(from_file.array, sent.array)
    assert field_of(lambda: decode_file(path, ImageLimits(max_side=5))) == str(path)


@pytest.mark.parametrize("dtype, sample", [(np.uint8, pb.SAMPLE_UINT8), ("<u2", pb.SAMPLE_UINT16),
                                           ("<f4", pb.SAMPLE_FLOAT32)])
@pytest.mark.parametrize("bands", [1, 5, 16])
def test_generic_images_are_a_view_of_bands_by_sample_type(dtype, sample, bands):
    values = (np.arange(6 * 10 * bands) % 200).reshape(6, 10, bands).astype(dtype)
    padded = np.zeros((6, 11, bands), dtype)
    padded[:, :10] = values
    stride = 11 * bands * np.dtype(dtype).itemsize
    image = decode_image(raw(pixel_format=pb.GENERIC, bands=bands, sample_type=sample, row_stride=stride,
                             pixels=padded.tobytes()), LIMITS)
    assert image.pixel_format is formats.generic(bands, formats.sample_by_proto(sample))
    assert not image.array.flags.owndata and image.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(image.array, values[..., 0] if bands == 1 else values)


@pytest.mark.parametrize("fields, field", [
    (dict(bands=0), "image.raw.bands"),
    (dict(bands=17), "image.raw.bands"),
    (dict(bands=3, sample_type=0), "image.raw.sample_type"),
    (dict(bands=3, sample_type=9), "image.raw.sample_type"),
    (dict(bands=3, sample_type=pb.SAMPLE_UINT16, row_stride=61), "image.raw.row_stride"),
    (dict(bands=2, sample_type=pb.SAMPLE_UINT8), "image.raw.pixels"),
])
def test_each_wrong_generic_field_is_named(fields, field):
    image = raw(pixel_format=pb.GENERIC, **fields)
    if fields.get("sample_type") == pb.SAMPLE_UINT16:
        image.raw.pixels = bytes(61 * 6)
    assert field_of(lambda: decode_image(image, LIMITS)) == field


def test_named_formats_refuse_generic_fields():
    with pytest.raises(InvalidArgument, match="image.raw.bands: bands and sample_type are for GENERIC only"):
        decode_image(raw(bands=3), LIMITS)


def test_generic_limits_count_every_band():
    limits = ImageLimits(max_side=64, max_bytes=6 * 10 * 16 * 4 - 1)
    image = raw(pixel_format=pb.GENERIC, bands=16, sample_type=pb.SAMPLE_FLOAT32, pixels=bytes(6 * 10 * 64))
    with pytest.raises(InvalidArgument, match=r"GENERIC \(16 x FLOAT32\) = 3840 bytes decoded"):
        decode_image(image, limits)
