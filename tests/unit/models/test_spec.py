"""ModelSpec derives once what its fields imply; model_io reads the ONNX input against it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from roiclass.server.models.onnx_info import model_io
from roiclass.server.models.spec import ModelIO, ModelSpec
from tests.onnx_files import save_graph

from .model_factory import make_classifier


def spec(**kw) -> ModelSpec:
    kw.setdefault("channels", 3)
    return ModelSpec("m", "1", kw.pop("onnx_path", Path("m.onnx")), ("a", "b", "c", "d"),
                     input_width=kw.pop("width", 32), input_height=kw.pop("height", 32), **kw)


@pytest.mark.parametrize("channels,given,want", [
    (3, (10.0,), (10.0, 10.0, 10.0)),  # one value: every channel
    (3, (1.0, 2.0, 3.0), (1.0, 2.0, 3.0)),
    (1, (7.0, 7.0, 7.0), (7.0,)),  # a gray model given equal values
    (1, (0.0, 30.0, 60.0), (30.0,)),  # ... or three: their mean (the luma's)
    (4, (5.0,), (5.0,) * 4),
])
def test_mean_and_std_are_stored_per_model_channel(channels, given, want):
    order = "GRAY" if channels == 1 else ("bands:0,1,2,3" if channels == 4 else "RGB")
    s = spec(channels=channels, channel_order=order, mean=given, std=given)
    assert s.mean == want and s.std == want


def test_a_mean_that_fits_no_rule_is_refused():
    with pytest.raises(ValueError, match="mean has 2 values for 3 input channels"):
        spec(mean=(1.0, 2.0))
    with pytest.raises(ValueError, match="std values must be non-zero"):
        spec(std=(1.0, 0.0, 1.0))


def test_the_default_statistics_fit_a_hand_built_gray_spec():
    gray = spec(channels=1, channel_order="GRAY")  # mean/std left at their 3-value defaults
    assert gray.mean == (0.0,) and gray.std == (255.0,)


def test_band_orders_and_band_lists_are_one_fact():
    by_order = spec(channel_order="bands:3,2,1")
    assert by_order.extract_bands == (3, 2, 1)
    by_list = spec(extract_bands=(3, 2, 1))
    assert by_list.channel_order == "bands:3,2,1" and by_list == by_order
    assert spec().extract_bands is None
    with pytest.raises(ValueError, match="disagree"):
        spec(channel_order="bands:3,2,1", extract_bands=(0, 1, 2))
    with pytest.raises(ValueError, match="has 2 bands"):
        spec(channel_order="bands:3,2")
    with pytest.raises(ValueError, match="expected bands:<int>"):
        spec(channel_order="bands:a,b,c")


def test_item_shape_is_in_layout_order():
    assert spec(width=40, height=30).item_shape == (3, 30, 40)
    assert spec(width=40, height=30, layout="NHWC").item_shape == (30, 40, 3)


def test_model_io_reads_a_dynamic_and_a_fixed_batch(tmp_path):
    dyn = model_io(spec(onnx_path=make_classifier(tmp_path / "d.onnx")))
    assert dyn == ModelIO("image", "logits", np.dtype(np.float32), (3, 32, 32), 0)
    fixed = make_classifier(tmp_path / "f.onnx", batch=4, layout="NHWC", dtype="float16", height=None)
    io = model_io(spec(onnx_path=fixed, layout="NHWC", height=24))
    assert (io.dtype, io.item_shape, io.fixed_batch) == (np.dtype(np.float16), (24, 32, 3), 4)


def test_a_spec_whose_io_disagrees_with_it_is_refused(tmp_path):
    io = model_io(spec(onnx_path=make_classifier(tmp_path / "d.onnx")))
    with pytest.raises(ValueError, match=r"item shape \(3, 32, 32\)"):
        spec(io=io, width=16)


def _graph(path: Path, elem: int, dims: list) -> Path:
    x = helper.make_tensor_value_info("x", elem, dims)
    y = helper.make_tensor_value_info("y", elem, dims)
    return save_graph(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]), path)


def test_model_io_errors_name_the_input_and_what_is_expected(tmp_path):
    f64 = _graph(tmp_path / "f64.onnx", TensorProto.DOUBLE, ["N", 3, 32, 32])
    with pytest.raises(ValueError, match=r"model input 'x' is tensor\(double\); supported: tensor\(float\)"):
        model_io(spec(onnx_path=f64))
    flat = _graph(tmp_path / "flat.onnx", TensorProto.FLOAT, ["N", 3, 32])
    with pytest.raises(ValueError, match=r"model input 'x' has shape \['N', 3, 32\]; expected 4 dims \(NCHW\)"):
        model_io(spec(onnx_path=flat))
    wide = make_classifier(tmp_path / "wide.onnx", width=64)
    with pytest.raises(ValueError, match=r"does not match the config \(NCHW \(3, 32, 32\)\) at dim 3"):
        model_io(spec(onnx_path=wide))
    with pytest.raises(ValueError, match="at dim 1"):
        model_io(spec(onnx_path=wide, channels=1, channel_order="GRAY", width=64))


def test_loaded_specs_carry_their_io(tmp_path):
    from roiclass.server.models.builder import build_spec

    onnx = make_classifier(tmp_path / "m.onnx", layout="NHWC", batch=2)
    built = build_spec(onnx, name="m", version="1", where="here", fmt="roiclass", source=onnx,
                       max_batch_size=2)
    assert built.io == ModelIO("image", "logits", np.dtype(np.float32), (32, 32, 3), 2)
    assert built.io == model_io(built)
    # A model with a softmax in the graph and a fixed batch of 3 is probed at that batch.
    probs = make_classifier(tmp_path / "p.onnx", batch=3, softmax=True)
    built = build_spec(probs, name="p", version="1", where="here", fmt="roiclass", source=probs)
    assert built.softmax is False and built.max_batch_size == 3
