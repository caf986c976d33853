"""Decompression bombs and oversized raw images are refused from the header /
declared size, before any pixel is decoded (issue #17, defect 4)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from roiclass.server.cli import build_parser, config_from_args
from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.errors import InvalidArgument
from roiclass.server.images import ImageLimits, decode_image
from roiclass.v1 import classifier_pb2 as pb
from tests.png_bomb import png_bomb


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_bomb()


def test_a_png_bomb_is_refused_before_decoding(bomb):
    assert len(bomb) < 1 << 20  # the 144 Mpx image travels as < 1 MiB
    msg = pb.ClassifyObjectRequest(image=pb.Image(encoded=bomb))
    t0 = time.perf_counter()
    with pytest.raises(InvalidArgument) as info:
        ClassifyRequest.from_proto(msg, RequestLimits())
    assert time.perf_counter() - t0 < 1.0  # decoding it took ~4 s and 1.4 GB
    assert info.value.violations[0].field == "image.encoded"
    assert "12000x12000 = 144000000 pixels" in info.value.message and "--max-image-pixels" in info.value.message


def test_a_raw_image_over_the_pixel_limit_is_refused_from_its_declared_size():
    raw = pb.RawImage(width=9000, height=9000, pixel_format=pb.GRAY8, pixels=b"")
    with pytest.raises(InvalidArgument) as info:
        decode_image(pb.Image(raw=raw), ImageLimits())
    assert info.value.violations[0].field == "image.raw" and "--max-image-pixels" in info.value.message


def test_decoded_bytes_count_the_format():
    limits = ImageLimits(max_side=100, max_pixels=10_000, max_bytes=20_000)
    gray = pb.RawImage(width=100, height=100, pixel_format=pb.GRAY8, pixels=bytes(10_000))
    assert decode_image(pb.Image(raw=gray), limits).array.shape == (100, 100)
    rgb = pb.RawImage(width=100, height=100, pixel_format=pb.RGB8, pixels=bytes(30_000))
    with pytest.raises(InvalidArgument, match="30000 bytes decoded; at most 20000"):
        decode_image(pb.Image(raw=rgb), limits)


def test_an_image_within_the_limits_still_decodes():
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(np.full((40, 30, 3), 7, np.uint8)).save(buf, format="PNG")
    array, fmt = decode_image(pb.Image(encoded=buf.getvalue()), ImageLimits(max_pixels=1200))
    assert array.shape == (40, 30, 3) and fmt.name == "RGB8"


def test_the_limits_are_flags():
    parser = build_parser()
    config = config_from_args(parser.parse_args(["--max-image-pixels", "1000", "--max-decoded-mb", "2"]),
                              parser)
    assert config.limits.image == ImageLimits(16384, 1000, 2 << 20)
    with pytest.raises(SystemExit):
        config_from_args(parser.parse_args(["--max-decoded-mb", "0"]), parser)
