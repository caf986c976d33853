"""Frame ranges, --every, --fps and --only-where as a source's selector."""
from __future__ import annotations

import pytest

from roiclass.client.errors import InvalidInputError
from roiclass.client.video.sampling import FrameRange, Sampler, parse_frames
from roiclass.client.video.sources import KEEP, SKIP


@pytest.mark.parametrize("value,expected", [
    (None, FrameRange(0, None)), ("20:40", FrameRange(20, 40)), (":7", FrameRange(0, 7)),
    ("5:", FrameRange(5, None)), ((3, 9), FrameRange(3, 9)), (range(2, 4), FrameRange(2, 4)),
])
def test_ranges(value, expected):
    assert parse_frames(value) == expected


@pytest.mark.parametrize("value,message", [
    ("7:7", "END must be > START"), ("-1:4", "START must be an integer >= 0"), ("1:2:3", "must be START:END"),
    (range(0, 10, 2), "must be 'START:END'"), ((1.5, 3), "START must be an integer"),
])
def test_bad_ranges_name_the_field(value, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        parse_frames(value)
    assert caught.value.details[0].field == "frames"


def _kept(sampler, times):
    return [i for i, t in enumerate(times) if sampler(i, t) == KEEP]


def test_every_counts_from_the_start_of_the_range():
    sampler = Sampler(start=3, every=4)
    assert [i for i in range(3, 20) if sampler(i, i / 30) == KEEP] == [3, 7, 11, 15, 19]


def test_fps_keeps_the_first_frame_of_each_slot():
    assert _kept(Sampler(0, fps=10), [i / 30 for i in range(30)]) == list(range(0, 30, 3))
    # 25 fps resampled to 10: slots every 0.1 s.
    assert _kept(Sampler(0, fps=10), [i / 25 for i in range(13)]) == [0, 3, 5, 8, 10]
    # Variable frame rate with a gap: the missed slots are not made up afterwards.
    assert _kept(Sampler(0, fps=10), [0.0, 0.05, 0.5, 0.52, 0.61]) == [0, 2, 4]


def test_only_reports_the_other_sampled_frames_as_skipped():
    sampler = Sampler(0, every=2, only={2, 3, 4})
    assert [sampler(i, 0.0) for i in range(6)] == [SKIP, None, KEEP, None, KEEP, None]


def test_every_and_fps_together_are_refused():
    with pytest.raises(InvalidInputError, match="not both"):
        Sampler(0, every=2, fps=5.0)
