"""The fair queue without models: one FIFO per caller, batches cut round-robin
between callers, drops and the per-caller cap, and one caller as before."""
from __future__ import annotations

import time

import pytest

from roiclass.server import errors
from roiclass.server.engine.batcher import CallerLimit, Job, WorkQueue
from roiclass.server.engine.policy import PeakOutstandingPolicy


class Payload:
    def result(self, queue_s, pre_s, inf_s):
        return "done"


def queue(max_batch=4, max_items=10_000, cap=0) -> WorkQueue:
    return WorkQueue(max_items, PeakOutstandingPolicy(max_batch, 0.0),
                     lambda job, why: job.fail(why), max_per_caller=cap)


def put(q: WorkQueue, caller: str, n: int, **kw) -> Job:
    job = Job(n, Payload(), kw.get("deadline"), kw.get("is_cancelled"), caller)
    q.put(job, n)
    return job


def cut(q: WorkQueue) -> list[tuple[str, int, int]]:
    """The next batch as (caller, start, count) per chunk."""
    batch = q.take(lambda: False)
    q.finished()
    return [(c.job.caller, c.start, c.count) for c in batch]


def test_a_light_caller_shares_the_next_batch_with_a_heavy_one():
    q = queue(max_batch=8)
    heavy = [put(q, "heavy", 256) for _ in range(8)]
    light = put(q, "light", 1)
    assert cut(q) == [("heavy", 0, 7), ("light", 0, 1)]  # not behind 2,048 items
    assert [sum(n for _, _, n in cut(q)) for _ in range(3)] == [8, 8, 8]  # heavy alone: full
    assert light.remaining == 1 and heavy[0].remaining == 256  # nothing ran yet: counts only


def test_batches_alternate_between_callers_and_each_keeps_its_order():
    q = queue(max_batch=4)
    a = [put(q, "a", 3), put(q, "a", 3)]
    b = [put(q, "b", 5)]
    order = []
    while q.depth:
        order += cut(q)
    assert [c for c, _, _ in order[:2]] == ["a", "b"]
    mine = [(s, n) for c, s, n in order if c == "a"]
    # a's chunks come in FIFO order: the first job's 3 items, then the second's
    assert sum(n for _, n in mine) == 6 and mine[0] == (0, 2)
    starts_b = [s for c, s, _ in order if c == "b"]
    assert starts_b == sorted(starts_b) and sum(n for c, _, n in order if c == "b") == 5
    assert a[0].remaining == 3 and b[0].remaining == 5


def test_each_caller_gets_an_equal_share_and_the_turn_rotates():
    q = queue(max_batch=6)
    for caller in "abc":
        put(q, caller, 100)
    first, second = cut(q), cut(q)
    assert sorted((c, n) for c, _, n in first) == [("a", 2), ("b", 2), ("c", 2)]
    assert [c for c, _, _ in second] == ["a", "b", "c"]


def test_more_callers_than_room_are_served_in_turn_none_starves():
    q = queue(max_batch=2)
    for caller in "abcde":
        put(q, caller, 10)
    served = [c for _ in range(5) for c, _, _ in cut(q)]
    assert sorted(served) == sorted("aabbccddee")


def test_a_small_callers_share_left_over_goes_to_the_others():
    q = queue(max_batch=8)
    put(q, "heavy", 100)
    put(q, "light", 1)
    put(q, "mid", 2)
    batch = cut(q)
    assert sum(n for _, _, n in batch) == 8
    assert dict((c, 0) for c, _, _ in batch).keys() == {"heavy", "light", "mid"}


def test_without_fill_a_shared_batch_is_one_round_of_turns():
    q = queue(max_batch=8)
    q.fill_shared = False  # CPU instances: a batch's time grows with its size
    put(q, "heavy", 100)
    put(q, "light", 1)
    assert cut(q) == [("heavy", 0, 4), ("light", 0, 1)]  # the light caller's batch stays short
    assert cut(q) == [("heavy", 4, 8)]  # alone again: full


def test_one_job_split_over_turns_of_one_batch_is_one_chunk():
    q = queue(max_batch=8)
    put(q, "heavy", 100)
    put(q, "light", 1)
    batch = cut(q)
    assert batch == [("heavy", 0, 7), ("light", 0, 1)]  # 4 + 3 merged


def test_one_caller_gets_the_batches_one_fifo_gives():
    q = queue(max_batch=4)
    jobs = [put(q, "only", n) for n in (3, 6, 1)]
    sizes = []
    while q.depth:
        sizes.append([(s, n) for _, s, n in cut(q)])
    assert sizes == [[(0, 3), (0, 1)], [(1, 4)], [(5, 1), (0, 1)]]
    assert all(j.remaining for j in jobs)


def test_expired_and_cancelled_jobs_are_dropped_in_every_lane():
    q = queue(max_batch=8)
    expired = put(q, "a", 2, deadline=time.monotonic() - 1)
    live_a = put(q, "a", 1)
    cancelled = put(q, "b", 3, is_cancelled=lambda: True)
    live_b = put(q, "b", 2)
    batch = cut(q)
    assert sorted((c, n) for c, _, n in batch) == [("a", 1), ("b", 2)]
    assert isinstance(expired.future.exception(0), errors.DeadlineExceeded)
    assert isinstance(cancelled.future.exception(0), errors.Cancelled)
    assert q.depth == 0 and live_a.remaining == 1 and live_b.remaining == 2


def test_a_cut_of_only_dropped_jobs_takes_nothing_and_the_queue_reads_idle():
    q = queue()
    put(q, "a", 2, deadline=time.monotonic() - 1)
    put(q, "b", 1, deadline=time.monotonic() - 1)
    assert q.take(lambda: False) == []
    assert q.idle()


def test_a_retried_chunk_goes_back_to_the_head_of_its_callers_lane():
    q = queue(max_batch=4)
    put(q, "a", 6)
    put(q, "b", 6)
    batch = q.take(lambda: False)
    first = [(c.job.caller, c.start, c.count) for c in batch]
    assert first == [("a", 0, 2), ("b", 0, 2)]
    q.requeue_front(batch)
    q.finished()
    assert cut(q) == first


def test_drain_returns_every_lanes_chunks():
    q = queue()
    jobs = [put(q, "a", 2), put(q, "b", 3), put(q, "a", 1)]
    chunks = q.drain()
    assert sorted(c.count for c in chunks) == [1, 2, 3] and q.depth == 0 and not q.take(lambda: True)
    assert {c.job for c in chunks} == set(jobs)


def test_the_per_caller_cap_counts_items_in_flight_until_the_job_ends():
    q = queue(cap=10)
    first = put(q, "a", 6)
    put(q, "b", 10)  # another caller has its own allowance
    with pytest.raises(CallerLimit, match=r"max_inflight_rois_per_client=10 "
                                          r"\(--max-inflight-rois-per-client\)") as exc:
        put(q, "a", 5)
    assert isinstance(exc.value, errors.ResourceExhausted)
    assert q.held("a") == 6 and q.depth == 16  # the refused job was not queued
    batch = q.take(lambda: False)  # running still counts as in flight
    assert q.held("a") == 6
    first.complete(6, 0.0, 0.0, 0.0)
    q.finished()
    assert q.held("a") == 0 and batch
    put(q, "a", 10)  # the allowance is back


def test_a_failed_or_dropped_job_gives_its_allowance_back():
    q = queue(cap=4)
    put(q, "a", 4, deadline=time.monotonic() - 1)
    assert q.take(lambda: False) == []  # dropped at the cut
    assert q.held("a") == 0
    job = put(q, "a", 4)
    job.fail(errors.Internal("boom"))
    assert q.held("a") == 0


def test_the_anonymous_caller_is_never_capped():
    q = queue(cap=2)
    put(q, "", 5)
    put(q, "", 5)
    assert q.depth == 10
