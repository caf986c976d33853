"""The progress bar (tqdm, as `roiclass video`): features done of the total,
rate, time left; on a terminal only, never with --quiet."""
from __future__ import annotations

import sys


class Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self._bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total if total > 0 else None, unit="feature", file=sys.stderr,
                             dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} "
                             "[{elapsed}<{remaining}, {rate_fmt}]")

    def update(self, n: float) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
