"""[[children]], [detector] and defaults.tta in a config.toml -> ModelSpec."""
from __future__ import annotations

import pytest

from roiclass.server.models import ModelConfigError
from roiclass.server.models.config import spec_from_config
from roiclass.server.models.pipeline import ChildSpec, TtaMode, parse_roi_rule, parse_tta

from .model_factory import make_classifier


@pytest.fixture
def onnx(tmp_path):
    return make_classifier(tmp_path / "1" / "model.onnx")


def _spec(tmp_path, onnx, text: str):
    config = tmp_path / "config.toml"
    config.write_text(text)
    return spec_from_config(config, onnx, "1", "cars")


def test_children_are_read_in_order_with_their_defaults(tmp_path, onnx):
    spec = _spec(tmp_path, onnx, """
[[children]]
model = "car_color"
when = ["car", 2]
min_confidence = 0.5
roi = "expand:1.2"

[[children]]
model = "plate"
""")
    assert spec.children == (
        ChildSpec("car_color", "", ("car", 2), 0.5, "expand:1.2", 1.2),
        ChildSpec("plate", "", (), 0.0, "same", 1.0),
    )


@pytest.mark.parametrize("text, message", [
    ('[[children]]\nwhen = ["car"]\n', r"children\[0\] needs model"),
    ('[[children]]\nmodel = "a"\ncolour = 1\n', r"unknown key children\[0\]\.'colour'; allowed: model, version"),
    ('[[children]]\nmodel = "a"\nroi = "grow"\n', r"children\[0\]\.roi = 'grow'; allowed: same, expand:F"),
    ('[[children]]\nmodel = "a"\nmin_confidence = 1.5\n', r"children\[0\]\.min_confidence = 1\.5 is out of range"),
    ('[[children]]\nmodel = "a"\nwhen = [-1]\n', r"children\[0\]\.when must be a list of class names or indices"),
    ('[defaults]\ntta = "mirror"\n', r"defaults\.tta = 'mirror' is not a test-time augmentation; allowed: none, flip"),
    ('[detector]\niou = 0.5\n', r"\[detector\] needs format; allowed: yolov5, yolov8, yolox, yolov8-obb"),
    ('[detector]\nformat = "ssd"\n', r"detector\.format = 'ssd' is not allowed; allowed: yolov5"),
])
def test_bad_pipeline_keys_name_the_key_and_the_allowed_values(tmp_path, onnx, text, message):
    with pytest.raises(ModelConfigError, match=message):
        _spec(tmp_path, onnx, text)


def test_tta_modes_round_trip_through_their_text():
    for text in ("none", "flip", "dihedral", "rotations:5:4"):
        assert parse_tta(text).text == text
    assert parse_tta("rotations:3:-7.5") == TtaMode("rotations", 3, -7.5)
    assert [parse_tta(t).variants for t in ("none", "flip", "dihedral", "rotations:5:4")] == [1, 2, 8, 5]
    for bad in ("rotations:0:4", "rotations:3:0", "rotations:3", "rotations:x:4"):
        with pytest.raises(ValueError):
            parse_tta(bad)


def test_roi_rules():
    assert parse_roi_rule("same") == 1.0 and parse_roi_rule("Expand:1.5") == 1.5
    for bad in ("expand:0", "expand:inf", "shrink:2"):
        with pytest.raises(ValueError):
            parse_roi_rule(bad)
