"""Poisoned items, backpressure, deadlines, cancellation, runtime failover."""
from __future__ import annotations

import time

import numpy as np
import pytest
from tests.unit.engine.conftest import make_onnx, make_spec, rois_grid

from roiclass.server import errors


def test_poisoned_item_fails_only_its_request(make_engine, tiny_onnx, chelsea):
    eng = make_engine(fault_injection=True)
    eng.load(make_spec(tiny_onnx, max_queue_delay_us=50000))
    model = eng.resolve("tiny")
    eng.inject_fault("tiny", "1", "preprocess", match=lambda roi: roi[3] == 77.0)
    poisoned = rois_grid(3, seed=1)
    poisoned[1, 3] = 77.0
    futures = [eng.classify(model, chelsea, "RGB8", rois_grid(2, s)) for s in range(4)]
    bad = eng.classify(model, chelsea, "RGB8", poisoned)
    futures += [eng.classify(model, chelsea, "RGB8", rois_grid(2, s)) for s in range(4, 8)]
    with pytest.raises(errors.InvalidArgument) as err:
        bad.result(timeout=10)
    assert err.value.violations[0].field == "rois[1]"
    assert all(f.result(timeout=10).probabilities.shape == (2, 3) for f in futures)
    c = eng.counters("tiny", "1")
    assert c["failed_items"] == 1 and c["items"] == 16 and c["max_batch"] > 2


def test_queue_overflow_is_resource_exhausted_and_engine_keeps_serving(make_engine, tmp_path,
                                                                       chelsea):
    eng = make_engine()
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=8), max_batch_size=1,
                       max_queue_size=4))
    model = eng.resolve("tiny")
    with pytest.raises(errors.ResourceExhausted, match="max_queue_size=4"):
        eng.classify(model, chelsea, "RGB8", rois_grid(5)).result(timeout=10)
    futures = [eng.classify(model, chelsea, "RGB8", rois_grid(1, s)) for s in range(40)]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(timeout=10).probabilities.shape)
        except errors.ResourceExhausted:
            outcomes.append("exhausted")
    assert "exhausted" in outcomes and (1, 3) in outcomes
    assert eng.counters("tiny", "1")["rejected"] == 5 + outcomes.count("exhausted")
    out = eng.classify(model, chelsea, "RGB8", rois_grid(2)).result(timeout=10)
    assert out.probabilities.shape == (2, 3)
    assert 'reason="overflow"' in eng.metrics.render().decode()


def test_expired_deadline_dropped_before_inference(make_engine, tmp_path, chelsea):
    eng = make_engine()
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=8), max_batch_size=1))
    model = eng.resolve("tiny")
    before = eng.counters("tiny", "1")["items"]
    with pytest.raises(errors.DeadlineExceeded):
        eng.classify(model, chelsea, "RGB8", rois_grid(2),
                     deadline=time.monotonic() - 0.001).result(timeout=10)
    # Queued behind 30 slow items, a 1 ms deadline expires before its turn.
    busy = [eng.classify(model, chelsea, "RGB8", rois_grid(1, s)) for s in range(30)]
    late = eng.classify(model, chelsea, "RGB8", rois_grid(1), deadline=time.monotonic() + 0.001)
    with pytest.raises(errors.DeadlineExceeded):
        late.result(timeout=10)
    for f in busy:
        f.result(timeout=10)
    c = eng.counters("tiny", "1")
    assert c["items"] - before == 30 and c["dropped_deadline"] == 2


def test_cancelled_calls_dropped_before_inference(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx, max_queue_delay_us=100000))
    model = eng.resolve("tiny")
    cancelled = {"flag": False}
    keep = eng.classify(model, chelsea, "RGB8", rois_grid(2, 1))
    gone = eng.classify(model, chelsea, "RGB8", rois_grid(2, 2),
                        is_cancelled=lambda: cancelled["flag"])
    cancelled["flag"] = True
    with pytest.raises(errors.Cancelled):
        gone.result(timeout=10)
    assert keep.result(timeout=10).probabilities.shape == (2, 3)
    c = eng.counters("tiny", "1")
    assert c["dropped_cancelled"] == 1 and c["items"] == 2


def test_device_failure_takes_instance_out_and_retries(make_engine, tiny_onnx, chelsea):
    eng = make_engine(instances_per_device=2, fault_injection=True)
    eng.load(make_spec(tiny_onnx, max_batch_size=4))
    model = eng.resolve("tiny")
    eng.inject_fault("tiny", "1", "run", instance=0)
    results = [eng.classify(model, chelsea, "RGB8", rois_grid(3, s)) for s in range(40)]
    assert all(f.result(timeout=10).probabilities.shape == (3, 3) for f in results)
    c = eng.counters("tiny", "1")
    assert c["instance_failures"] == 1 and c["retries"] >= 1
    inst = {i.index: i.healthy for i in eng.status()[0].instances}
    assert inst == {0: False, 1: True}
    text = eng.metrics.render().decode()
    assert 'roiclass_instance_healthy{device="cpu",instance="0",model="tiny",version="1"} 0.0' \
        in text
    assert 'roiclass_instance_failures_total{device="cpu",instance="0",model="tiny",' \
        'version="1"} 1.0' in text


def test_last_instance_failing_falls_back_to_new_cpu_instances(make_engine, tiny_onnx, chelsea):
    eng = make_engine(fault_injection=True)
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    eng.inject_fault("tiny", "1", "run")
    out = eng.classify(model, chelsea, "RGB8", rois_grid(3)).result(timeout=10)
    assert out.probabilities.shape == (3, 3)
    st = eng.status()[0]
    assert st.state == "READY"
    assert [(i.index, i.device, i.healthy) for i in st.instances] == [(0, "cpu", False),
                                                                      (1, "cpu", True)]


def test_no_instance_left_without_fallback_is_unavailable(make_engine, tiny_onnx, chelsea):
    eng = make_engine(fault_injection=True)
    eng.load(make_spec(tiny_onnx, allow_cpu_fallback=False))
    model = eng.resolve("tiny")
    eng.inject_fault("tiny", "1", "run")
    with pytest.raises(errors.Unavailable):
        eng.classify(model, chelsea, "RGB8", rois_grid(3)).result(timeout=10)
    with pytest.raises(errors.Unavailable, match="no healthy instance"):
        eng.resolve("tiny")
    with pytest.raises(errors.Unavailable):
        eng.classify(model, chelsea, "RGB8", rois_grid(1)).result(timeout=10)


def test_fault_injection_is_off_by_default(make_engine, tiny_onnx):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    with pytest.raises(errors.FailedPrecondition):
        eng.inject_fault("tiny", "1", "run")


def test_bad_inputs_name_the_field(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    with pytest.raises(errors.InvalidArgument, match="image.raw.pixel_format"):
        eng.classify(model, chelsea, "GRAY8", rois_grid(1)).result(timeout=10)
    with pytest.raises(errors.InvalidArgument, match="allowed: GRAY8"):
        eng.classify(model, chelsea, "RGB9", rois_grid(1)).result(timeout=10)
    with pytest.raises(errors.InvalidArgument, match="tensors"):
        eng.infer_tensors(model, np.zeros((2, 3, 8, 8), np.float32)).result(timeout=10)


def test_roi_the_kernel_rejects_fails_only_its_request(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx, max_queue_delay_us=50000))
    model = eng.resolve("tiny")
    bad_rois = rois_grid(1)
    bad_rois[0, 2] = 0.0  # zero width: the kernel raises ValueError
    good = [eng.classify(model, chelsea, "RGB8", rois_grid(2, s)) for s in range(3)]
    bad = eng.classify(model, chelsea, "RGB8", bad_rois)
    good += [eng.classify(model, chelsea, "RGB8", rois_grid(2, s)) for s in range(3, 6)]
    with pytest.raises(errors.InvalidArgument, match=r"rois\[0\].*preprocessing failed"):
        bad.result(timeout=10)
    assert all(f.result(timeout=10).probabilities.shape == (2, 3) for f in good)
    assert eng.counters("tiny", "1")["items"] == 12


def test_unload_waits_for_queued_items(make_engine, tmp_path, chelsea):
    eng = make_engine()
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=8), max_batch_size=1))
    model = eng.resolve("tiny")
    futures = [eng.classify(model, chelsea, "RGB8", rois_grid(1, s)) for s in range(20)]
    eng.unload("tiny", "1")
    assert all(f.done() and f.result().probabilities.shape == (1, 3) for f in futures)
    assert eng.status()[0].state == "UNLOADED" and eng.status()[0].instances == []
    with pytest.raises(errors.Unavailable):
        eng.classify(model, chelsea, "RGB8", rois_grid(1)).result(timeout=10)


def test_reload_after_cpu_fallback_leaves_no_stale_instance_series(make_engine, tiny_onnx, chelsea):
    eng = make_engine(fault_injection=True)
    eng.load(make_spec(tiny_onnx))
    eng.inject_fault("tiny", "1", "run")
    eng.classify(eng.resolve("tiny"), chelsea, "RGB8", rois_grid(1)).result(timeout=10)
    assert 'instance="1"' in eng.metrics.render().decode()  # the fallback's instance
    eng.load(make_spec(tiny_onnx))  # the same version again: one healthy instance
    series = [line for line in eng.metrics.render().decode().splitlines()
              if line.startswith("roiclass_instance_healthy{")]
    assert series == ['roiclass_instance_healthy{device="cpu",instance="0",model="tiny",version="1"} 1.0']

