"""Exact frame ranges: random ranges of a file with a keyframe every 12
frames (and B-frames) equal a full decode's frames, pixel for pixel, and a
range in the middle decodes at most a keyframe interval before it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roiclass.client.video.sampling import Sampler
from roiclass.client.video.sources import FileSource, SequenceSource, natural_key
from roiclass.v1 import classifier_pb2 as pb
from tests.unit.client.video.clips import CODEC, decode_all, pixels, write_video

FRAMES, GOP = 240, 12


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    # Every frame differs (a moving bar, fresh noise): a frame off by one would not compare equal.
    frames = []
    for i in range(FRAMES):
        frame = base.copy()
        frame[:, (i * 3) % 64] = 255
        frame[rng.integers(0, 48, 20), rng.integers(0, 64, 20)] = rng.integers(0, 255, (20, 3))
        frames.append(frame)
    return write_video(tmp_path_factory.mktemp("seek") / "long.mp4", frames, gop=GOP)


@pytest.fixture(scope="module")
def reference(long_file):
    return decode_all(long_file)


def _range(source, start, end):
    return list(source.frames(start, end, Sampler(start)))


def test_the_index_counts_the_frames_and_finds_the_keyframes(long_file, reference):
    source = FileSource(str(long_file))
    assert source.frame_count == len(reference) == FRAMES
    assert source._index.exact
    if CODEC == "libx264":
        assert len(source._index.keyframes) == FRAMES // GOP


@pytest.mark.parametrize("mode", ["yuv", "rgb"])  # I420 as decoded (the default), or converted
def test_random_ranges_equal_a_full_decode(long_file, reference, mode):
    if mode == "yuv":
        reference = decode_all(long_file, yuv=True)
    rng = np.random.default_rng(3)
    ranges = [(0, 5), (FRAMES - 7, FRAMES), (GOP, GOP + 1), (GOP - 1, GOP + 1)]
    ranges += [tuple(sorted(rng.choice(FRAMES + 1, 2, replace=False))) for _ in range(8)]
    for start, end in ranges:
        frames = _range(FileSource(str(long_file), pixels=mode), start, end)
        assert {f.image.raw.pixel_format for f in frames} <= {pb.I420 if mode == "yuv" else pb.RGB8}
        assert [f.index for f in frames] == list(range(start, end))
        for frame in frames:
            assert np.array_equal(pixels(frame.image), reference[frame.index]), (start, end, frame.index)


def test_a_range_in_the_middle_does_not_decode_the_file_before_it(long_file):
    source = FileSource(str(long_file))
    frames = _range(source, 200, 210)
    assert [f.index for f in frames] == list(range(200, 210))
    # From the keyframe at or before 200, through 209 (a few more for B-frame reordering).
    assert source.decoded <= 10 + GOP + 4, source.decoded


def test_times_are_seconds_from_frame_zero(long_file):
    frames = _range(FileSource(str(long_file)), 100, 103)
    assert [f.time for f in frames] == pytest.approx([100 / 30, 101 / 30, 102 / 30])


def test_a_sequence_is_in_natural_order(tmp_path):
    from PIL import Image

    for i in (10, 2, 1):
        Image.fromarray(np.full((4, 6, 3), i, np.uint8)).save(tmp_path / f"f{i}.png")
    source = SequenceSource(str(tmp_path), rate=10)
    assert [p.name for p in source.paths] == ["f1.png", "f2.png", "f10.png"]
    frames = _range(source, 1, 3)
    assert [(f.index, f.time, int(pixels(f.image)[0, 0, 0])) for f in frames] == [(1, 0.1, 2), (2, 0.2, 10)]
    names = sorted(map(Path, ["a10.png", "a9.png", "b1.png", "A2.png"]), key=natural_key)
    assert [p.name for p in names] == ["A2.png", "a9.png", "a10.png", "b1.png"]


@pytest.fixture(scope="module")
def mjpeg_file(tmp_path_factory, reference):
    return write_video(tmp_path_factory.mktemp("mjpeg") / "intra.avi", reference[:40], codec="mjpeg")


def test_an_intra_only_codec_decodes_only_the_frames_it_keeps(mjpeg_file):
    reference = decode_all(mjpeg_file)
    source = FileSource(str(mjpeg_file))
    frames = list(source.frames(5, 35, Sampler(5, every=3, only={8, 20, 29})))
    assert [f.index for f in frames] == list(range(5, 35, 3))
    assert [f.image is not None for f in frames] == [f.index in (8, 20, 29) for f in frames]
    assert source.decoded == 3  # the skipped and unsampled frames were never decoded
    for frame in frames:
        if frame.image is not None:
            assert np.array_equal(pixels(frame.image), reference[frame.index])
    assert [f.time for f in frames] == pytest.approx([i / 30 for i in range(5, 35, 3)])
