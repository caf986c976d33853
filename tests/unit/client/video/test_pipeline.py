"""The queue between the decoder and the stream: a file's blocks, a live source's drops the oldest."""
from __future__ import annotations

import threading

from roiclass.client.video.pipeline import FrameQueue
from roiclass.client.video.sources import DecodedFrame


def _frame(i):
    return DecodedFrame(i, i / 30, None, 0.0)


def test_live_drops_the_oldest_unsent_frame():
    queue, stop = FrameQueue(2, drop_oldest=True), threading.Event()
    for i in range(5):
        queue.put(_frame(i), stop)
    queue.close()
    assert [queue.take(stop).index, queue.take(stop).index, queue.take(stop)] == [3, 4, None]
    assert queue.dropped == 3


def test_a_file_blocks_the_decoder_until_a_frame_is_taken():
    queue, stop = FrameQueue(2, drop_oldest=False), threading.Event()
    queue.put(_frame(0), stop)
    queue.put(_frame(1), stop)
    third = threading.Thread(target=queue.put, args=(_frame(2), stop))
    third.start()
    third.join(0.2)
    assert third.is_alive()  # full: the decoder waits
    assert queue.take(stop).index == 0
    third.join(5)
    queue.close()
    assert [queue.take(stop).index, queue.take(stop).index, queue.take(stop)] == [1, 2, None]
    assert queue.dropped == 0
