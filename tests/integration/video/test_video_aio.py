"""AsyncClassifier.classify_video: the same frames and labels as the blocking client, on one event loop."""
from __future__ import annotations

import asyncio

from roiclass.client import AsyncClassifier, Classifier
from tests.conftest import CAT_CLASSES, COFFEE_CLASSES


def test_async_frames_equal_the_blocking_clients(server, clip):
    async def body():
        async with AsyncClassifier(server.address) as classifier:
            run = await classifier.classify_video(clip, frames="26:34", every=2, window=3)
            frames = [frame async for frame in run]
            early = await classifier.classify_video(clip, live=True)
            async for frame in early:  # leaving early ends the stream and the decoder
                break
            return frames, run.stats, early.stats

    frames, stats, early = asyncio.run(asyncio.wait_for(body(), 60))
    with Classifier(server.address) as classifier:
        blocking = list(classifier.classify_video(clip, frames="26:34", every=2))
    assert [f.index for f in frames] == [f.index for f in blocking] == [26, 28, 30, 32]
    assert [f.result.results[0].class_index for f in frames] == [f.result.results[0].class_index for f in blocking]
    assert frames[0].result.results[0].class_index in CAT_CLASSES
    assert frames[-1].result.results[0].class_index in COFFEE_CLASSES
    assert stats.classified == 4 and early.classified == 1 and early.decoded < 60
