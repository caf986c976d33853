"""Segments: runs of consecutive classified frames with the same best class.

What a video labelling tool imports as frame-range labels. Each ROI (the
whole frame when there are none) has its own runs. A frame whose best score
is below min_confidence, a failed or skipped frame, ends the run it is in;
frames left out by sampling (--every, --fps) do not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from .results import VideoFrameResult


@dataclass(frozen=True)
class Segment:
    """Frames start_frame..end_frame (both included) of ROI `roi`, best class `class_name`."""

    roi: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    class_name: str
    class_index: int
    frames: int  # classified frames in the run (fewer than the span when sampled)
    mean_confidence: float
    min_confidence: float


class _Run:
    def __init__(self, roi: int, frame: VideoFrameResult, name: str, index: int, score: float) -> None:
        self.roi, self.name, self.index = roi, name, index
        self.first = self.last = frame
        self.scores = [score]

    def segment(self) -> Segment:
        return Segment(self.roi, self.first.index, self.last.index, self.first.time, self.last.time,
                       self.name, self.index, len(self.scores), sum(self.scores) / len(self.scores),
                       min(self.scores))


def segments(frames: Iterable[VideoFrameResult], min_confidence: float = 0.0) -> Iterator[Segment]:
    """Merges per-frame results (in frame order, e.g. classify_video's) into
    segments, each yielded when its run ends (so a live source's come as it
    goes), the runs still open at the end last; sorted(..., key=segment_order)
    puts them by ROI, then start frame."""
    runs: dict[int, _Run] = {}
    for frame in frames:
        yield from _step(runs, frame, min_confidence)
    yield from (run.segment() for _, run in sorted(runs.items()))


def segment_order(segment: Segment) -> tuple[int, int]:
    return segment.roi, segment.start_frame


def _step(runs: dict[int, _Run], frame: VideoFrameResult, min_confidence: float) -> list[Segment]:
    """Extends or ends each ROI's run with this frame; returns the ended ones."""
    ended: list[Segment] = []
    rois = frame.result.results if frame.result is not None else ()
    best = {i: r for i, r in enumerate(rois) if r.score >= min_confidence}
    for roi in list(runs):
        run = runs[roi]
        now = best.get(roi)
        if now is None or now.class_index != run.index:
            ended.append(runs.pop(roi).segment())
    for roi, result in best.items():
        run = runs.get(roi)
        if run is None:
            runs[roi] = _Run(roi, frame, result.class_name, result.class_index, result.score)
        else:
            run.last = frame
            run.scores.append(result.score)
    return ended
