"""What classify_video yields per frame, and the run's counts."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ClassifierError
from ..types import ClassifyResult


@dataclass(frozen=True)
class VideoFrameResult:
    """One frame: `index` (from 0), `time` (seconds from frame 0) and exactly
    one of: `result` (one RoiResult per ROI, the whole frame when none),
    `error` (this frame failed, the run goes on) or `skipped` (--only-where).
    lag: seconds from the frame's decode to its result (0 when skipped)."""

    index: int
    time: float
    result: ClassifyResult | None = None
    error: ClassifierError | None = None
    skipped: bool = False
    lag: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class VideoStats:
    """Filled in as the run goes. decoded: frames the decoder produced (those
    decoded only to reach the range's start included); dropped: live frames
    dropped unsent because the server fell behind."""

    decoded: int = 0
    classified: int = 0
    failed: int = 0
    skipped: int = 0
    dropped: int = 0
    reconnects: int = 0  # of a live source
    elapsed_s: float = 0.0
    first_error: ClassifierError | None = None  # of the failed frames
    lags: list[float] = field(default_factory=list)

    def lag_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.lags, q)) if self.lags else None

    @property
    def fps(self) -> float:
        return self.classified / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        """The one line the command prints at the end."""
        p50, p99 = self.lag_percentile(50), self.lag_percentile(99)
        lag = "-" if p50 is None else f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        parts = [f"{self.decoded} decoded", f"{self.classified} classified"]
        parts += [f"{self.failed} failed"] * bool(self.failed)
        parts += [f"{self.skipped} skipped"] * bool(self.skipped)
        parts += [f"{self.dropped} dropped", f"{self.fps:.1f} fps", f"lag {lag}"]
        parts += [f"{self.reconnects} reconnects"] * bool(self.reconnects)
        return "frames: " + ", ".join(parts)
