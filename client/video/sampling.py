"""Which frames of a source are classified: the range, --every / --fps,
and --only-where (a labels file's frames with given classes)."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Collection

from ..errors import InvalidInputError
from .sources import KEEP, SKIP

OPEN_END = sys.maxsize  # a range without END: to the end of the source


@dataclass(frozen=True)
class FrameRange:
    """Half-open: frames start..end-1; end None = to the end."""

    start: int = 0
    end: int | None = None

    def stop(self) -> int:
        return OPEN_END if self.end is None else self.end

    def __str__(self) -> str:
        return f"{self.start}:{'' if self.end is None else self.end}"


def parse_frames(value: Any) -> FrameRange:
    """None, "START:END" (either side may be empty), (start, end) or range(start, end[, 1])."""
    if value is None or isinstance(value, FrameRange):
        return value or FrameRange()
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2:
            raise InvalidInputError("frames", f"must be START:END (frame indices, END excluded), got {value!r}")
        try:
            start, end = (int(p) if p.strip() else None for p in parts)
        except ValueError:
            raise InvalidInputError("frames", f"START and END must be integers, got {value!r}") from None
    elif isinstance(value, range) and value.step == 1:
        start, end = value.start, value.stop
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        start, end = value
    else:
        raise InvalidInputError("frames", f"must be 'START:END', (start, end) or range(start, end), got {value!r}")
    start = 0 if start is None else start
    for name, number in (("START", start), ("END", end)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
            raise InvalidInputError("frames", f"{name} must be an integer >= 0, got {number!r}")
    if end is not None and end <= start:
        raise InvalidInputError("frames", f"END must be > START (the range is half-open), got {start}:{end}")
    return FrameRange(start, end)


def check_every(every: Any) -> int:
    if every is None:
        return 1
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InvalidInputError("every", f"must be an integer >= 1, got {every!r}")
    return every


def check_fps(fps: Any) -> float | None:
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (fps > 0 and math.isfinite(fps)):
        raise InvalidInputError("fps", f"must be a number of frames per second > 0, got {fps!r}")
    return float(fps)


class Sampler:
    """The selector a source calls per frame (sources.Selector): every N-th
    frame of the range, or the first at or after each 1/fps slot of time; then
    frames not in `only` (frame indices) are reported as skipped."""

    def __init__(self, start: int, every: int = 1, fps: float | None = None,
                 only: Collection[int] | None = None) -> None:
        if every != 1 and fps is not None:
            raise InvalidInputError("every", "give every or fps, not both")
        self.start, self.every, self.fps, self.only = start, every, fps, only
        self._next_slot: float | None = None

    def __call__(self, index: int, time: float) -> str | None:
        if self.fps is not None:
            if self._next_slot is not None and time < self._next_slot - 1e-6:
                return None
            slot = 1.0 / self.fps
            base = time if self._next_slot is None else self._next_slot
            # The next slot after this frame's time (slots missed by a gap are not made up).
            self._next_slot = base + slot * max(1, math.floor((time - base) / slot + 1e-6) + 1)
        elif (index - self.start) % self.every:
            return None
        if self.only is not None and index not in self.only:
            return SKIP
        return KEEP
