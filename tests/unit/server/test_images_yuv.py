"""YUV 4:2:0 RawImages (I420, NV12) -> OpenCV's (H * 3 / 2, W) array: packed
and padded rows, and each wrong field an InvalidArgument naming it."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.server import formats
from roiclass.server.errors import InvalidArgument
from roiclass.server.images import ImageLimits, decode_image
from roiclass.v1 import classifier_pb2 as pb

W, H = 10, 6
FRAME = np.random.default_rng(0).integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)  # OpenCV's layout


def padded(frame: np.ndarray, stride: int, planar: bool) -> bytes:
    """The proto's layout with rows `stride` apart (I420's chroma rows stride / 2)."""
    luma, chroma = frame[:H], frame[H:].reshape(H, W // 2) if planar else frame[H:]
    step = stride // 2 if planar else stride
    rows = [np.pad(r, (0, stride - W)) for r in luma] + [np.pad(r, (0, step - len(r))) for r in chroma]
    return b"".join(r.tobytes() for r in rows)


def image(fmt=pb.I420, **fields) -> pb.Image:
    base = dict(width=W, height=H, pixel_format=fmt, pixels=FRAME.tobytes())
    base.update(fields)
    return pb.Image(raw=pb.RawImage(**base))


def violation(img: pb.Image, limits=ImageLimits()) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as err:
        decode_image(img, limits)
    return err.value.violations[0].field, err.value.violations[0].description


@pytest.mark.parametrize("fmt", [pb.I420, pb.NV12])
def test_a_packed_frame_is_a_view_of_the_request_bytes(fmt):
    img = image(fmt)
    got = decode_image(img, ImageLimits())
    assert got.pixel_format is formats.by_proto(fmt) and (got.width, got.height) == (W, H)
    assert np.array_equal(got.array, FRAME) and not got.array.flags.writeable  # the bytes, not a copy


@pytest.mark.parametrize("fmt, planar", [(pb.I420, True), (pb.NV12, False)])
@pytest.mark.parametrize("cut", [0, 1])  # the last row's padding may be left off
def test_padded_rows_give_the_same_frame(fmt, planar, cut):
    stride = 16
    data = padded(FRAME, stride, planar)
    data = data[:len(data) - cut * ((stride - W) // 2 if planar else stride - W)]
    got = decode_image(image(fmt, row_stride=stride, pixels=data), ImageLimits())
    assert np.array_equal(got.array, FRAME) and got.height == H


@pytest.mark.parametrize("field, fields, words", [
    ("image.raw.width", dict(width=9, pixels=b"\0" * 81), "9 is odd; I420 needs an even width and height"),
    ("image.raw.height", dict(height=5, pixels=b"\0" * 75), "5 is odd"),
    ("image.raw.row_stride", dict(row_stride=8), ">= width = 10"),
    ("image.raw.row_stride", dict(row_stride=11), "even"),
    ("image.raw.pixels", dict(pixels=FRAME.tobytes()[:-1]), "has 89 bytes; I420 10x6 with row_stride 10 takes 90"),
    ("image.raw.pixels", dict(pixels=FRAME.tobytes() + b"\0"), "has 91 bytes"),
    ("image.raw.bands", dict(bands=3), "GENERIC only"),
])
def test_each_wrong_field_is_named(field, fields, words):
    got_field, description = violation(image(**fields))
    assert got_field == field and words in description


def test_nv12_strides_need_not_be_even():
    data = padded(FRAME, 11, planar=False)
    assert np.array_equal(decode_image(image(pb.NV12, row_stride=11, pixels=data), ImageLimits()).array, FRAME)


def test_the_decoded_size_limit_counts_one_and_a_half_bytes_a_pixel():
    exact = ImageLimits(max_bytes=W * H * 3 // 2)
    assert decode_image(image(), exact).array.shape == FRAME.shape
    field, description = violation(image(), ImageLimits(max_bytes=W * H * 3 // 2 - 1))
    assert field == "image.raw" and f"= {W * H * 3 // 2} bytes decoded" in description


def test_the_records():
    for name, chroma in (("I420", "planar"), ("NV12", "interleaved")):
        fmt = formats.by_name(name)
        assert (fmt.channels, fmt.colour, fmt.chroma, fmt.dtype) == (3, "RGB", chroma, np.uint8)
        assert fmt.shape(6, 10) == (9, 10) and fmt.frame_bytes(10, 6) == 90
        assert fmt.size_of((9, 10)) == (6, 10) and fmt.size_of((9, 11)) is None and fmt.size_of((10, 10)) is None
        assert [fmt.band_index(b) for b in range(3)] == [0, 1, 2]
    assert formats.for_array(np.uint8, 3, "RGB").name == "RGB8"  # a YUV record is never an array's guess
