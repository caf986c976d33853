"""A batch cut that only drops jobs (deadline passed) takes nothing: the queue
must still read idle afterwards, so unloading (reload, shutdown) does not wait
out its whole grace period (issue #17, defects 2 and 3)."""
from __future__ import annotations

import time

import numpy as np

from roiclass.server import errors
from tests.unit.engine.conftest import make_spec


def test_unload_after_a_deadline_drop_is_quick(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    late = eng.classify(model, chelsea, "RGB8", np.array([[10.0, 10, 50, 40, 0]]),
                        deadline=time.monotonic() - 1.0)
    assert isinstance(late.exception(timeout=10), errors.DeadlineExceeded)
    assert eng.counters("tiny", "1")["dropped_deadline"] == 1
    time.sleep(0.2)  # the worker goes back to waiting
    assert model.queue.idle()
    t0 = time.monotonic()
    eng.unload("tiny", "1")
    assert time.monotonic() - t0 < 3.0  # the grace period is 30 s


def test_reloading_a_version_after_a_deadline_drop_is_quick(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    spec = make_spec(tiny_onnx)
    eng.load(spec)
    model = eng.resolve("tiny")
    late = eng.classify(model, chelsea, "RGB8", np.array([[10.0, 10, 50, 40, 0]]),
                        deadline=time.monotonic() - 1.0)
    assert isinstance(late.exception(timeout=10), errors.DeadlineExceeded)
    time.sleep(0.2)
    t0 = time.monotonic()
    eng.load(spec)  # ReloadModels of a changed version: the new load swaps in, the old unloads
    assert time.monotonic() - t0 < 5.0  # the old load's unload waited its 30 s grace
    assert eng.resolve("tiny") is not model
