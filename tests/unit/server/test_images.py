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
