"""The progress bar of `roiclass video` on a file: frames done of the range, fps.

tqdm, because it keeps the bar on stderr below table lines printed to stdout
(tqdm.write) and measures the rate itself; off with --json, off the terminal,
and for live sources (they have no end to count towards).
"""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable, Iterator


def expected_frames(run: Any) -> int | None:
    """Frames the run will yield, when its source and sampling tell."""
    count = run.source.frame_count
    if count is None or run.sampler.fps is not None:
        return None
    end = min(count, run.frames.stop())
    return math.ceil((end - run.frames.start) / run.sampler.every)


class Progress:
    def __init__(self, run: Any, enabled: bool) -> None:
        self._bar = None
        if enabled and not run.live:
            from tqdm import tqdm  # the `video` extra

            self._bar = tqdm(total=expected_frames(run), unit="frame", file=sys.stderr, dynamic_ncols=True,
                             leave=False)

    def track(self, frames: Iterable[Any]) -> Iterator[Any]:
        for frame in frames:
            yield frame
            if self._bar is not None:
                self._bar.update(1)

    def write(self, line: str) -> None:
        if self._bar is None:
            print(line, flush=True)
        else:
            self._bar.write(line, file=sys.stdout)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._bar is not None:
            self._bar.close()
