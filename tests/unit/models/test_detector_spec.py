"""[detector] models at load: the ONNX output checked against the format's layout."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.server.models.config import spec_from_config
from roiclass.server.models.detector_spec import resolve_detector
from roiclass.server.models.errors import ModelConfigError
from roiclass.server.models.pipeline import DetectorSpec
from tests.detector_models import cell_detector, constant_detector


def _load(tmp_path, onnx_writer, config: str):
    onnx = onnx_writer(tmp_path / "1" / "model.onnx")
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    return spec_from_config(cfg, onnx, "1", "det")


def _const(shape, dims=None):
    return lambda p: constant_detector(p, np.zeros(shape, np.float32), dims=dims)


def test_a_yolov8_detector_gets_its_output_shape_classes_and_filter(tmp_path):
    spec = _load(tmp_path, cell_detector, 'classes = ["red", "green"]\n'
                 '[detector]\nformat = "yolov8"\nclasses = ["green", 0]\n')
    assert spec.detector.output_shape == (6, 16)
    assert spec.classes == ("red", "green")
    assert spec.detector.classes == (0, 1)
    assert spec.softmax is False  # the [output] default (softmax) does not apply to boxes


def test_class_names_default_to_indices_and_the_filter_takes_indices(tmp_path):
    spec = _load(tmp_path, _const((7, 20)), '[detector]\nformat = "yolov8-obb"\nclasses = [1]\n')
    assert spec.classes == ("0", "1") and spec.detector.classes == (1,)


@pytest.mark.parametrize("fmt, shape, nc", [("yolov5", (30, 8), 3), ("yolov8", (8, 30), 4),
                                            ("yolov8-obb", (8, 30), 3)])
def test_each_layout_gives_its_class_count(tmp_path, fmt, shape, nc):
    spec = _load(tmp_path, _const(shape), f'[detector]\nformat = "{fmt}"\n')
    assert len(spec.classes) == nc and spec.detector.output_shape == shape


def test_yolox_rows_are_its_grid_cells(tmp_path):
    cells = 8 * 8 + 4 * 4 + 2 * 2  # a 64 x 64 input at strides 8, 16, 32
    spec = _load(tmp_path, _const((cells, 7)), '[detector]\nformat = "yolox"\n')
    assert len(spec.classes) == 2
    with pytest.raises(ModelConfigError, match=r"strides \[8, 16, 32\] \(84 for a 64x64 input\), got 83"):
        _load(tmp_path, _const((cells - 1, 7)), '[detector]\nformat = "yolox"\n')


def test_class_count_must_match_the_output(tmp_path):
    with pytest.raises(ModelConfigError, match=r"3 class names given but the yolov8 output shape \[6, 16\] "
                                               r"holds 2 classes"):
        _load(tmp_path, cell_detector, 'classes = ["a", "b", "c"]\n[detector]\nformat = "yolov8"\n')


def test_an_unknown_class_in_the_filter_names_the_allowed_ones(tmp_path):
    with pytest.raises(ModelConfigError, match=r"'blue' is not a class of the detector; allowed: red, green"):
        _load(tmp_path, cell_detector, 'classes = ["red", "green"]\n[detector]\nformat = "yolov8"\nclasses = ["blue"]\n')
    with pytest.raises(ModelConfigError, match=r"index 2 is out of range; allowed: 0..1"):
        _load(tmp_path, cell_detector, '[detector]\nformat = "yolov8"\nclasses = [2]\n')


def test_dynamic_output_dims_are_read_from_a_run_at_the_input_size(tmp_path):
    spec = _load(tmp_path, _const((6, 16), dims=[6, "anchors"]), '[detector]\nformat = "yolov8"\n')
    assert spec.detector.output_shape == (6, 16) and len(spec.classes) == 2


def test_an_unknown_layout_names_the_supported_ones(tmp_path):
    with pytest.raises(ModelConfigError, match=r"\[6, 4, 4\] is not yolov8's .*supported layouts: yolov5 \[N, 5\+nc\]"
                                               r".*yolov8 \[4\+nc, N\].*yolox \[N, 5\+nc\].*yolov8-obb \[4\+nc\+1, N\]"):
        _load(tmp_path, _const((6, 4, 4)), '[detector]\nformat = "yolov8"\n')
    with pytest.raises(ModelConfigError, match=r"\[30, 5\] is not yolov5's"):  # no class rows
        _load(tmp_path, _const((30, 5)), '[detector]\nformat = "yolov5"\n')


def test_a_detector_is_not_resized_by_the_kernel_letterbox(tmp_path):
    with pytest.raises(ModelConfigError, match=r'resize = "stretch" \(got \'letterbox\'\)'):
        _load(tmp_path, cell_detector, '[input]\nresize = "letterbox"\n[detector]\nformat = "yolov8"\n')


def _fails():
    raise RuntimeError("shape mismatch in node Reshape")


def test_dynamic_dims_no_run_can_fix_are_named():
    args = dict(input_width=64, input_height=64, resize=None, where="cfg")
    with pytest.raises(ModelConfigError, match=r"dynamic dim 2 \('anchors'\)"):
        resolve_detector(DetectorSpec("yolov8"), ("batch", 6, "anchors"), None, **args)
    with pytest.raises(ModelConfigError, match=r"is dynamic and a run at the input size 64x64 failed: shape mismatch"):
        resolve_detector(DetectorSpec("yolov8"), ("batch", 6, "anchors"), None, probe=_fails, **args)
