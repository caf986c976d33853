"""How decoded frames travel: I420 as the decoder gives yuv420p (shrunk by
libswscale for max_side), RGB8 for other pixel formats, odd sides or
pixels="rgb"."""
from __future__ import annotations

import av
import numpy as np
import pytest

from roiclass.client.errors import InvalidInputError
from roiclass.client.video.sampling import Sampler
from roiclass.client.video.sources import FileSource, open_source
from roiclass.v1 import classifier_pb2 as pb
from tests.unit.client.video.clips import pixels, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    return write_video(tmp_path_factory.mktemp("pixels") / "clip.mp4", frames)


def _first(source):
    return next(iter(source.frames(0, 1, Sampler(0)))).image


def _reference(path, **reformat):
    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0]))
        return frame.reformat(**reformat).to_ndarray() if reformat else frame.to_ndarray()


def test_yuv420p_frames_go_as_i420_as_decoded(clip):
    image = _first(FileSource(str(clip)))
    assert (image.raw.pixel_format, image.raw.width, image.raw.height) == (pb.I420, 64, 48)
    assert np.array_equal(pixels(image), _reference(clip))


def test_max_side_shrinks_the_planes_with_libswscale(clip):
    image = _first(FileSource(str(clip), max_side=32))
    assert (image.raw.pixel_format, image.raw.width, image.raw.height) == (pb.I420, 32, 24)
    assert np.array_equal(pixels(image), _reference(clip, format="yuv420p", width=32, height=24))


@pytest.mark.parametrize("options", [dict(max_side=33), dict(pixels="rgb")])  # 33 x 25: odd sides
def test_odd_sides_and_pixels_rgb_go_as_rgb(clip, options):
    image = _first(FileSource(str(clip), **options))
    assert image.raw.pixel_format == pb.RGB8
    size = (33, 25) if "max_side" in options else (64, 48)
    assert (image.raw.width, image.raw.height) == size
    assert np.array_equal(pixels(image), _reference(clip, format="rgb24", width=size[0], height=size[1]))


def test_an_unknown_pixels_value_is_refused(clip):
    with pytest.raises(InvalidInputError) as info:
        open_source(str(clip), pixels="bgr")
    assert str(info.value.message).startswith("pixels: must be one of yuv, rgb")
