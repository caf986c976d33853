"""roiclass.client.video: classify video files, image sequences and cameras
over one ClassifyObjectStream (`roiclass video`, Classifier.classify_video).

    with Classifier("127.0.0.1:50051") as classifier:
        run = classifier.classify_video("clip.mp4", frames="20:40", top_k=3)
        for frame in run:
            print(frame.index, frame.time, frame.result.results[0].class_name)
        print(run.stats.summary())
        labels = list(segments(classifier.classify_video("clip.mp4"), min_confidence=0.5))

Needs PyAV (`pip install 'roiclass[video]'`). sources.py opens sources,
seeking.py keeps frame ranges exact, sampling.py picks frames, pipeline.py
runs decoding beside the stream, segments.py merges frames into segments,
output.py writes rows. Frames travel as I420 where the decoder gives
yuv420p (pixels="rgb": always RGB8).
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..errors import InvalidInputError
from .errors import SourceStoppedError, VideoSourceError
from .labels import OnlyWhere, frames_where, parse_only_where
from .aio_pipeline import AsyncVideoRun
from .pipeline import DEFAULT_WINDOW, VideoRun, check_window
from .results import VideoFrameResult, VideoStats
from .sampling import FrameRange, Sampler, check_every, check_fps, parse_frames
from .segments import Segment, segment_order, segments
from .sources import CameraFrames, is_live, open_source


def classify_video(client: Any, source: Any, **arguments: Any) -> VideoRun:
    """See Classifier.classify_video; `client` is a Classifier."""
    return VideoRun(client, **_prepare(source, **arguments))


async def classify_video_async(client: Any, source: Any, **arguments: Any) -> AsyncVideoRun:
    """See AsyncClassifier.classify_video: the source is opened (a file's
    packets indexed) off the event loop."""
    prepared = await asyncio.get_running_loop().run_in_executor(None, lambda: _prepare(source, **arguments))
    return AsyncVideoRun(client, **prepared)


def _prepare(source: Any, *, frames: Any = None, every: int | None = None, fps: float | None = None,
             rois: Any = None, live: bool | None = None, window: int | None = None,
             max_side: int | None = None, only_frames: Any = None, reconnect: int = 3,
             rate: float | None = None, pixels: str = "yuv", **stream_options: Any) -> dict[str, Any]:
    """Checks the arguments and opens the source: a run's keyword arguments."""
    frame_range = parse_frames(frames)
    sampler = Sampler(frame_range.start, check_every(every), check_fps(fps),
                      None if only_frames is None else frozenset(only_frames))
    window = check_window(window)
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1):
        raise InvalidInputError("max_side", f"must be an integer >= 1 (pixels), got {max_side!r}")
    opened = open_source(source, max_side=max_side, reconnect=reconnect, rate=rate, pixels=pixels)
    return dict(source=opened, frames=frame_range, sampler=sampler, rois=rois,
                live=opened.live if live is None else bool(live), window=window, stream_options=stream_options)


__all__ = [
    "AsyncVideoRun",
    "CameraFrames",
    "DEFAULT_WINDOW",
    "FrameRange",
    "OnlyWhere",
    "Segment",
    "SourceStoppedError",
    "VideoFrameResult",
    "VideoRun",
    "VideoSourceError",
    "VideoStats",
    "classify_video",
    "classify_video_async",
    "frames_where",
    "is_live",
    "parse_frames",
    "parse_only_where",
    "segment_order",
    "segments",
]
