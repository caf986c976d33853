"""imgproxy-style flags -> ModelSpec."""
from __future__ import annotations

import numpy as np
import pytest
from roiclass.server.models import ModelConfigError, spec_from_imgproxy
from roiclass.server.models.normalization import IMAGENET_MEAN, IMAGENET_STD

from .model_factory import make_classifier


@pytest.fixture()
def classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("cat\ndog\nfox\nowl\n")
    return path


def test_imgproxy_flags(tmp_path, classes):
    onnx = make_classifier(tmp_path / "net.onnx", layout="NHWC", height=28, width=28)
    spec = spec_from_imgproxy(onnx, classes, 28, "half", "nhwc", 0.5)
    assert (spec.name, spec.version, spec.format, spec.source) == ("net", "1", "imgproxy", onnx)
    assert spec.classes == ("cat", "dog", "fox", "owl")
    assert (spec.input_width, spec.input_height, spec.layout) == (28, 28, "NHWC")
    assert spec.normalization == "unit" and spec.std == (255.0,) * 3
    assert spec.min_confidence == 0.5 and spec.softmax is True


@pytest.mark.parametrize(
    "name, canonical, mean, std",
    [
        ("none", "none", (0.0,) * 3, (1.0,) * 3),
        ("full", "symmetric", (127.5,) * 3, (127.5,) * 3),
        ("imagenet", "imagenet", IMAGENET_MEAN, IMAGENET_STD),
    ],
)
def test_imgproxy_normalizations(tmp_path, name, canonical, mean, std):
    onnx = make_classifier(tmp_path / "net.onnx")
    spec = spec_from_imgproxy(onnx, None, None, name, None, 0.0, name="mine")
    assert spec.name == "mine" and spec.normalization == canonical and spec.classes == ("0", "1", "2", "3")
    np.testing.assert_allclose(spec.mean, mean)
    np.testing.assert_allclose(spec.std, std)


def test_net_size_sets_a_dynamic_input(tmp_path):
    onnx = make_classifier(tmp_path / "net.onnx", height="h", width="w", softmax=True)
    spec = spec_from_imgproxy(onnx, None, 64, "imagenet", "nchw", 0.1)
    assert (spec.input_width, spec.input_height) == (64, 64)
    assert spec.softmax is False  # the graph ends in Softmax: outputs are probabilities


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalization": "zscore"}, r"--normalization: unknown normalization 'zscore'; allowed: none, unit"),
        ({"layout": "chw"}, r"--layout 'chw' is not allowed; allowed: nchw, nhwc"),
        ({"net_size": 0}, r"--net-size must be a positive integer"),
        ({"net_size": 224}, r"width = 224 but the model input width is fixed at 32"),
        ({"threshold": 1.5}, r"--threshold 1\.5 is out of range; allowed: \[0, 1\]"),
        ({"layout": "nhwc"}, r"the model input has 32 channels"),
    ],
)
def test_bad_flags_are_explained(tmp_path, kwargs, message):
    onnx = make_classifier(tmp_path / "net.onnx")
    args = {"classes": None, "net_size": None, "normalization": "none", "layout": None, "threshold": 0.5}
    args.update(kwargs)
    with pytest.raises(ModelConfigError, match=message) as info:
        spec_from_imgproxy(onnx, **args)
    assert "--onnx" in str(info.value)


def test_class_count_must_match(tmp_path, classes):
    onnx = make_classifier(tmp_path / "net.onnx", num_classes=5)
    with pytest.raises(ModelConfigError, match=r"4 class names given but the model outputs 5 values"):
        spec_from_imgproxy(onnx, classes, None, "none", None, 0.5)
