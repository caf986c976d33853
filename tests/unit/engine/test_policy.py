"""The batch policy and the queue it drives, without models: when a batch
closes, how chunks split, and that jobs resolve through their payload."""
from __future__ import annotations

import threading
import time

import pytest

from roiclass.server import errors
from roiclass.server.engine.batcher import Job, WorkQueue
from roiclass.server.engine.policy import PeakOutstandingPolicy


class Payload:
    """Anything with result(): the queue must not look inside."""

    def result(self, queue_s, pre_s, inf_s):
        return ("done", pre_s, inf_s)


def queue(max_batch=4, delay_s=0.2, max_items=100) -> WorkQueue:
    dropped = []
    q = WorkQueue(max_items, PeakOutstandingPolicy(max_batch, delay_s),
                  lambda job, why: dropped.append((job, why)) or job.fail(why))
    q.dropped = dropped
    return q


def test_a_lone_job_is_cut_at_once_without_waiting_for_the_delay():
    q = queue(delay_s=5.0)
    q.put(Job(1, Payload(), None, None), 1)
    t0 = time.monotonic()
    batch = q.take(lambda: False)
    assert [c.count for c in batch] == [1] and time.monotonic() - t0 < 1.0


def test_the_batch_is_held_while_fewer_jobs_are_outstanding_than_the_recent_peak():
    p = PeakOutstandingPolicy(max_batch=8, max_delay_s=1.0)
    now = 100.0
    for _ in range(3):
        p.admitted(now)
    assert p.wait_s(depth=3, oldest_t=now, now=now) == 0.0  # at the peak: cut
    for _ in range(3):
        p.finished()
    p.admitted(now + 0.1)  # 1 of a peak of 3 outstanding: more are expected
    assert p.wait_s(depth=1, oldest_t=now + 0.1, now=now + 0.1) == pytest.approx(1.0)
    assert p.wait_s(depth=1, oldest_t=now + 0.1, now=now + 1.2) <= 0  # the delay is over
    assert p.wait_s(depth=8, oldest_t=now + 0.1, now=now + 0.1) == 0.0  # full


def test_the_peak_is_forgotten_after_two_periods():
    p = PeakOutstandingPolicy(max_batch=8, max_delay_s=1.0)
    for _ in range(4):
        p.admitted(0.0)
    for _ in range(4):
        p.finished()
    p.admitted(1.5)  # new period: the old peak still counts
    assert p.wait_s(1, 1.5, 1.5) > 0
    p.finished()
    p.admitted(3.0)  # two periods on: a lone job is cut at once
    assert p.wait_s(1, 3.0, 3.0) == 0.0


def test_max_batch_is_an_input_the_queue_cuts_by():
    q = queue(max_batch=4)
    job = Job(10, Payload(), None, None)
    q.put(job, 10)
    q.policy.max_batch = 3  # e.g. the CPU cap measured at load
    sizes = []
    while q.depth:
        batch = q.take(lambda: False)
        sizes.append(sum(c.count for c in batch))
        q.finished()
    assert sizes == [3, 3, 3, 1]


def test_a_job_resolves_through_its_payload_when_every_item_is_in():
    q = queue()
    job = Job(3, Payload(), None, None)
    q.put(job, 3)
    job.complete(2, 0.001, 0.002, 0.003)
    assert not job.future.done() and q.policy.outstanding == 1
    job.complete(1, 0.001, 0.002, 0.003)
    assert job.future.result(0) == ("done", pytest.approx(0.004), pytest.approx(0.006))
    assert q.policy.outstanding == 0


def test_expired_and_cancelled_jobs_are_dropped_when_a_batch_is_cut():
    q = queue()
    expired = Job(1, Payload(), time.monotonic() - 1, None)
    cancelled = Job(1, Payload(), None, lambda: True)
    live = Job(2, Payload(), None, None)
    for job in (expired, cancelled, live):
        q.put(job, job.remaining)
    batch = q.take(lambda: False)
    assert [c.job for c in batch] == [live]
    assert isinstance(expired.future.exception(0), errors.DeadlineExceeded)
    assert isinstance(cancelled.future.exception(0), errors.Cancelled)


def test_a_full_queue_refuses_with_resource_exhausted():
    q = queue(max_items=4)
    q.put(Job(3, Payload(), None, None), 3)
    with pytest.raises(errors.ResourceExhausted, match="max_queue_size=4"):
        q.put(Job(2, Payload(), None, None), 2)


def test_take_returns_none_when_told_to_stop():
    q = queue()
    stop = threading.Event()
    out = []
    t = threading.Thread(target=lambda: out.append(q.take(stop.is_set)))
    t.start()
    stop.set()
    with q.cond:
        q.cond.notify_all()
    t.join(2)
    assert out == [None]
