"""Dynamic batching: batches form, results match unbatched runs, ROI order holds."""
from __future__ import annotations

import threading

import numpy as np
from tests.unit.engine.conftest import make_onnx, make_spec, rois_grid


def test_batches_form_under_concurrent_load(make_engine, tmp_path, chelsea):
    eng = make_engine()
    eng.load(make_spec(make_onnx(tmp_path / "slow.onnx", extra_matmuls=6), max_batch_size=16))
    model = eng.resolve("tiny")
    futures, lock = [], threading.Lock()

    def client(seed):
        for k in range(10):
            f = eng.classify(model, chelsea, "RGB8", rois_grid(1 + k % 3, seed * 100 + k))
            with lock:
                futures.append(f)
            f.result(timeout=10)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = eng.counters("tiny", "1")
    assert all(f.result().probabilities.shape[1] == 3 for f in futures)
    assert c["items"] == sum(len(f.result().probabilities) for f in futures)
    assert c["max_batch"] > 1
    assert c["batches"] < len(futures)
    text = eng.metrics.render().decode()
    assert 'roiclass_batch_size_count{model="tiny",version="1"}' in text


def test_batched_results_identical_to_unbatched(make_engine, tiny_onnx, chelsea):
    batched = make_engine()
    batched.load(make_spec(tiny_onnx, max_batch_size=32, max_queue_delay_us=20000))
    single = make_engine()
    single.load(make_spec(tiny_onnx, max_batch_size=1))
    rois = [rois_grid(3, seed) for seed in range(12)]
    mb, ms = batched.resolve("tiny"), single.resolve("tiny")
    fb = [batched.classify(mb, chelsea, "RGB8", r) for r in rois]  # queued together
    outs_b = [f.result(timeout=10).probabilities for f in fb]
    outs_s = [single.classify(ms, chelsea, "RGB8", r).result(timeout=10).probabilities
              for r in rois]
    assert batched.counters("tiny", "1")["max_batch"] > 1
    assert single.counters("tiny", "1")["max_batch"] == 1
    for b, s in zip(outs_b, outs_s):
        np.testing.assert_allclose(b, s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.sum(axis=1), 1.0, rtol=1e-5)  # softmax applied


def test_rois_of_one_request_span_batches_in_order(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx, max_batch_size=8))
    model = eng.resolve("tiny")
    rois = rois_grid(37, seed=5)
    out = eng.classify(model, chelsea, "RGB8", rois).result(timeout=10)
    assert eng.counters("tiny", "1")["batches"] >= 5  # 37 items, at most 8 per batch
    one_by_one = np.vstack([eng.classify(model, chelsea, "RGB8", rois[i:i + 1])
                            .result(timeout=10).probabilities for i in range(len(rois))])
    np.testing.assert_allclose(out.probabilities, one_by_one, rtol=1e-5, atol=1e-6)
    assert out.queue_us >= 0 and out.preprocess_us > 0 and out.inference_us > 0


def test_infer_tensors_matches_classify(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    rois = rois_grid(5, seed=9)
    tensors = eng.preprocess(model, chelsea, "RGB8", rois)
    assert tensors.shape == (5, 3, 16, 16) and tensors.dtype == np.float32
    via_tensors = eng.infer_tensors(model, tensors).result(timeout=10).probabilities
    via_rois = eng.classify(model, chelsea, "RGB8", rois).result(timeout=10).probabilities
    np.testing.assert_allclose(via_tensors, via_rois, rtol=1e-6, atol=1e-7)
    # softmax of the model's own logits, computed here independently
    m = tensors.mean(axis=(2, 3))
    import onnx.numpy_helper as nh
    import onnx
    inits = {t.name: nh.to_array(t) for t in onnx.load(str(tiny_onnx)).graph.initializer}
    logits = m @ inits["W"] + inits["b"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(via_tensors, expected, rtol=1e-4, atol=1e-6)


def test_fixed_batch_one_model_runs_on_all_instances(make_engine, tmp_path, chelsea):
    eng = make_engine(instances_per_device=2)
    eng.load(make_spec(make_onnx(tmp_path / "b1.onnx", batch=1), max_batch_size=32))
    model = eng.resolve("tiny")
    assert model.max_batch == 1
    futures = [eng.classify(model, chelsea, "RGB8", rois_grid(4, s)) for s in range(10)]
    assert all(f.result(timeout=10).probabilities.shape == (4, 3) for f in futures)
    c = eng.counters("tiny", "1")
    assert c["max_batch"] == 1 and c["batches"] == 40
    assert len([i for i in eng.status()[0].instances if i.healthy]) == 2


def test_fixed_batch_four_model_pads_partial_batches(make_engine, tmp_path, chelsea):
    # An ONNX input of fixed batch 4: every run feeds 4 rows; a partial batch
    # fills the rest with stale rows whose outputs must never reach a request.
    fixed = make_engine()
    fixed.load(make_spec(make_onnx(tmp_path / "b4.onnx", batch=4), max_batch_size=32,
                         max_queue_delay_us=0))
    model = fixed.resolve("tiny")
    assert model.max_batch == 4 and model.model_max_batch == 4
    reference = make_engine()
    reference.load(make_spec(make_onnx(tmp_path / "dyn.onnx"), max_batch_size=1))
    ref_model = reference.resolve("tiny")
    for n, seed in ((1, 1), (3, 2), (4, 3), (7, 4), (9, 5)):  # partial, full and spanning batches
        rois = rois_grid(n, seed)
        got = fixed.classify(model, chelsea, "RGB8", rois).result(timeout=10).probabilities
        want = reference.classify(ref_model, chelsea, "RGB8", rois).result(timeout=10).probabilities
        assert got.shape == (n, 3)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    c = fixed.counters("tiny", "1")
    assert c["max_batch"] == 4
    assert c["batches"] == 1 + 1 + 1 + 2 + 3  # ceil(n / 4) per request
