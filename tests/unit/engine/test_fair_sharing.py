"""Fair sharing on a real (small but slow) model: a heavy caller keeping 8
requests of 256 ROIs in flight does not hold back a light caller's single-ROI
calls (issue #17), and alone it still gets full batches."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from roiclass.server import errors
from tests.unit.engine.conftest import make_onnx, make_spec, rois_grid

MAX_BATCH = 16
HEAVY_ROIS = 256
HEAVY_IN_FLIGHT = 8


class Heavy:
    """A closed-loop caller: HEAVY_IN_FLIGHT requests in flight until stopped
    (each completion submits the next one)."""

    def __init__(self, eng, model, image, caller="heavy"):
        self.eng, self.model, self.image, self.caller = eng, model, image, caller
        self.rois = rois_grid(HEAVY_ROIS, seed=3)
        self.stopping = False
        self.done = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._in_flight = 0

    def start(self, limit: int | None = None) -> "Heavy":
        self.limit = limit
        self._idle.clear()
        for _ in range(HEAVY_IN_FLIGHT):
            self._submit()
        return self

    def _submit(self) -> None:
        with self._lock:
            self._in_flight += 1
        f = self.eng.classify(self.model, self.image, "RGB8", self.rois, caller=self.caller)
        f.add_done_callback(self._finished)

    def _finished(self, f) -> None:
        if f.exception() is not None:
            self.errors.append(f.exception())
        with self._lock:
            self._in_flight -= 1
            self.done += 1
            more = not self.stopping and (self.limit is None or
                                          self.done + self._in_flight < self.limit)
            if not more and not self._in_flight:
                self._idle.set()
        if more:
            self._submit()

    def stop(self, timeout: float = 60.0) -> None:
        self.stopping = True
        self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> None:
        assert self._idle.wait(timeout), "the heavy caller's requests did not finish"


def light_latencies(eng, model, image, n: int) -> np.ndarray:
    rois = rois_grid(1, seed=7)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        eng.classify(model, image, "RGB8", rois, caller="light").result(timeout=30)
        out.append(time.perf_counter() - t0)
    return np.array(out)


@pytest.fixture
def slow_model(make_engine, tmp_path):
    eng = make_engine(cpu_batch_cap=0)  # the model's max batch: no probe, fixed batches
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=4),
                       max_batch_size=MAX_BATCH, max_queue_size=1 << 16))
    return eng, eng.resolve("tiny")


def _delta(eng, before):
    after = eng.counters("tiny", "1")
    return {k: after[k] - before[k] for k in ("batches", "items")}


def _heavy_alone(eng, model, image) -> float:
    """The heavy caller alone: full batches. Returns its mean batch time."""
    before = eng.counters("tiny", "1")
    t0 = time.perf_counter()
    alone = Heavy(eng, model, image).start(limit=24)
    alone.wait()
    elapsed = time.perf_counter() - t0
    d = _delta(eng, before)
    assert not alone.errors and d["items"] == 24 * HEAVY_ROIS
    assert d["items"] / d["batches"] >= 0.95 * MAX_BATCH  # as full as one FIFO cuts them
    return elapsed / d["batches"]


def _light_beside_heavy(eng, model, image) -> np.ndarray:
    heavy = Heavy(eng, model, image).start()
    time.sleep(0.05)  # its backlog is there: 8 x 256 items, 128 batches
    before = eng.counters("tiny", "1")
    loaded = light_latencies(eng, model, image, 200)
    depth_at_end = model.queue.depth
    heavy.stop()
    d = _delta(eng, before)
    assert not heavy.errors
    assert depth_at_end > MAX_BATCH  # the heavy caller saturated the model throughout
    # On a CPU a shared batch is one round (light 1 + heavy 8), the others full.
    assert d["items"] / d["batches"] >= 0.5 * MAX_BATCH
    return loaded


def test_a_light_caller_keeps_near_its_unloaded_latency_beside_a_heavy_one(slow_model, chelsea):
    """p99 within 3x the unloaded p99 plus one batch time (behind one FIFO the
    light call would wait for the whole backlog: >= 128 batches). The machine
    is shared and noisy: the best of three tries counts."""
    eng, model = slow_model
    light_latencies(eng, model, chelsea, 20)  # warm
    tries = []
    for _ in range(3):
        unloaded = np.percentile(light_latencies(eng, model, chelsea, 200), 99)
        batch_s = _heavy_alone(eng, model, chelsea)
        p99 = np.percentile(_light_beside_heavy(eng, model, chelsea), 99)
        tries.append(f"light p99 {1e3 * p99:.2f} ms beside the heavy caller; unloaded p99 "
                     f"{1e3 * unloaded:.2f} ms, one batch {1e3 * batch_s:.2f} ms")
        if p99 <= 3 * unloaded + batch_s:
            return
    pytest.fail("; ".join(tries))


def test_the_per_caller_cap_refuses_with_resource_exhausted_and_others_go_on(
        make_engine, tmp_path, chelsea):
    eng = make_engine(cpu_batch_cap=0, max_inflight_rois_per_client=300)
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=4),
                       max_batch_size=MAX_BATCH))
    model = eng.resolve("tiny")
    rois = rois_grid(HEAVY_ROIS, seed=1)
    first = eng.classify(model, chelsea, "RGB8", rois, caller="heavy")
    second = eng.classify(model, chelsea, "RGB8", rois, caller="heavy")  # 512 > 300
    other = eng.classify(model, chelsea, "RGB8", rois, caller="other")
    exc = second.exception(timeout=10)
    assert isinstance(exc, errors.ResourceExhausted)
    assert "max_inflight_rois_per_client=300" in str(exc)
    assert first.result(timeout=30).probabilities.shape == (HEAVY_ROIS, 3)
    assert other.result(timeout=30).probabilities.shape == (HEAVY_ROIS, 3)
    again = eng.classify(model, chelsea, "RGB8", rois, caller="heavy")  # its ROIs are back
    assert again.result(timeout=30).probabilities.shape == (HEAVY_ROIS, 3)
    c = eng.counters("tiny", "1")
    assert c["rejected_client_limit"] == HEAVY_ROIS and c["rejected"] == 0
    assert 'reason="client_limit"' in eng.metrics.render().decode()
