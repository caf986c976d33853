"""Engine.preprocess (the heatmap's path) maps the kernel's checks to the same
status as a batch does: INVALID_ARGUMENT naming the ROIs, never INTERNAL."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.server import errors
from tests.unit.engine.conftest import SIZE, make_spec


def test_preprocess_gives_the_input_shape(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    out = eng.preprocess(model, chelsea, "RGB8", np.array([[10.0, 10, 50, 40, 15], [0, 0, 451, 300, 0]]))
    assert out.shape == (2, 3, SIZE, SIZE) and out.dtype == np.float32 and np.isfinite(out).all()


def test_a_roi_the_kernel_refuses_is_invalid_argument_as_in_a_batch(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    bad = np.array([[10.0, 10, 50, 40, 0], [10.0, 10, np.inf, 40, 0]])
    with pytest.raises(errors.InvalidArgument) as direct:
        eng.preprocess(model, chelsea, "RGB8", bad)
    assert direct.value.violations[0].field == "rois[0..1]"
    batched = eng.classify(model, chelsea, "RGB8", bad).exception(timeout=10)
    assert isinstance(batched, errors.InvalidArgument)


def test_rows_of_the_wrong_shape_fail_their_request_only(make_engine, tiny_onnx, chelsea):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    bad = eng.classify(model, chelsea, "RGB8", np.zeros((2, 4)) + 20)
    good = eng.classify(model, chelsea, "RGB8", np.array([[10.0, 10, 50, 40, 15]]))
    exc = bad.exception(timeout=10)
    assert isinstance(exc, errors.InvalidArgument) and "rois" in exc.violations[0].field
    assert good.result(timeout=10).probabilities.shape == (1, 3)
