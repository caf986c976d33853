"""Exact frame ranges in a video file: frame N is the N-th decoded frame.

The packet index (one demux pass, no decoding) lists every frame's
presentation timestamp; decoders emit frames in timestamp order, so the N-th
smallest timestamp is frame N. To start at frame START the file is seeked to
the last keyframe whose timestamp is at or before START's and decoded
forward, frames before START dropped: a range in the middle of a long file
decodes at most one keyframe interval (plus reordering) before it. Where the
index cannot be trusted (a packet without a timestamp, two with the same
one), frames are counted from a decode of the whole stream instead: slower,
just as exact.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class PacketIndex:
    """pts: every frame's timestamp in frame order; keyframes: the keyframes'
    timestamps, ascending; exact: False when the index cannot be trusted."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    exact: bool

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    def keyframe_before(self, index: int) -> int | None:
        """The timestamp to seek to for frame `index`: the last keyframe at or before it."""
        target = self.pts[index]
        at = bisect.bisect_right(self.keyframes, target) - 1
        return self.keyframes[at] if at >= 0 else None


def build_index(container: Any, stream: Any) -> PacketIndex:
    """Demuxes the whole stream once (packets only, nothing decoded)."""
    pts: list[int] = []
    keyframes: list[int] = []
    exact = True
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's flush packet
            continue
        if packet.pts is None:
            exact = False
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    ordered = sorted(pts)
    if len(set(ordered)) != len(ordered) or not keyframes:
        exact = False
    return PacketIndex(tuple(ordered), tuple(sorted(keyframes)), exact)


def frame_time(pts: int | None, origin: int, time_base: Any) -> float:
    """Seconds from frame 0 (its timestamp is `origin`)."""
    return float((pts - origin) * time_base) if pts is not None else 0.0


def decode_range(container: Any, stream: Any, index: PacketIndex, start: int, end: int,
                 tally: Callable[[], None] = lambda: None) -> Iterator[tuple[int, Any]]:
    """(frame index, av.VideoFrame) for frames start..end-1, exactly those a
    full decode numbers so; `index` from build_index on another container.
    tally() is called for every frame decoded, those before start included."""
    if index.exact and start < index.frame_count:
        yield from _from_keyframe(container, stream, index, start, end, tally)
    else:
        yield from _counting(container, stream, start, end, tally)


def _from_keyframe(container: Any, stream: Any, index: PacketIndex, start: int, end: int,
                   tally: Callable[[], None]) -> Iterator[tuple[int, Any]]:
    seek = index.keyframe_before(start)
    if seek is not None and seek > index.pts[0]:
        container.seek(seek, stream=stream, backward=True, any_frame=False)
    numbers = {pts: i for i, pts in enumerate(index.pts)}
    for frame in container.decode(stream):
        tally()
        number = numbers.get(frame.pts)
        if number is None:
            raise ValueError(f"decoded a frame with timestamp {frame.pts} that the packet index lacks")
        if number >= end:
            return
        if number >= start:
            yield number, frame


def _counting(container: Any, stream: Any, start: int, end: int,
              tally: Callable[[], None]) -> Iterator[tuple[int, Any]]:
    for number, frame in enumerate(container.decode(stream)):
        tally()
        if number >= end:
            return
        if number >= start:
            yield number, frame
