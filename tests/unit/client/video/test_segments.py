"""Segments: runs of the same best class per ROI, broken by low scores,
failures and skipped frames, not by sampling gaps."""
from __future__ import annotations

import grpc

from roiclass.client.errors import ClassifierError
from roiclass.client.types import ClassifyResult, Roi, RoiResult, Timing
from roiclass.client.video import segment_order, segments
from roiclass.client.video.results import VideoFrameResult


def _frame(index, *labels):
    """labels: (class_index, score) per ROI."""
    results = tuple(RoiResult("", Roi(0, 0, 1, 1), (), c, f"class{c}", s) for c, s in labels)
    return VideoFrameResult(index, index / 10, ClassifyResult("m", "1", results, Timing(0, 0, 0, 0), str(index)))


def test_runs_merge_with_mean_and_min_confidence():
    frames = [_frame(0, (1, 0.9)), _frame(1, (1, 0.7)), _frame(2, (2, 0.8)), _frame(3, (2, 0.6))]
    found = list(segments(frames))
    assert [(s.start_frame, s.end_frame, s.class_index, s.frames) for s in found] == [(0, 1, 1, 2), (2, 3, 2, 2)]
    assert found[0].mean_confidence == (0.9 + 0.7) / 2 and found[0].min_confidence == 0.7
    assert (found[1].start_time, found[1].end_time) == (0.2, 0.3)


def test_low_scores_failures_and_skips_end_a_run():
    error = ClassifierError(grpc.StatusCode.INTERNAL, "boom")
    frames = [_frame(0, (1, 0.9)), _frame(1, (1, 0.3)), _frame(2, (1, 0.9)),
              VideoFrameResult(3, 0.3, error=error), _frame(4, (1, 0.9)),
              VideoFrameResult(5, 0.5, skipped=True), _frame(6, (1, 0.9)), _frame(8, (1, 0.9))]
    found = list(segments(frames, min_confidence=0.5))
    assert [(s.start_frame, s.end_frame) for s in found] == [(0, 0), (2, 2), (4, 4), (6, 8)]


def test_each_roi_has_its_own_runs():
    frames = [_frame(0, (1, 0.9), (5, 0.9)), _frame(1, (1, 0.9), (6, 0.9)), _frame(2, (2, 0.9), (6, 0.9))]
    found = sorted(segments(frames), key=segment_order)
    assert [(s.roi, s.start_frame, s.end_frame, s.class_index) for s in found] == [
        (0, 0, 1, 1), (0, 2, 2, 2), (1, 0, 0, 5), (1, 1, 2, 6)]
