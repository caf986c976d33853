"""config.toml -> ModelSpec, with real ONNX files written into tmp_path."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from roiclass.server.models import ModelConfigError
from roiclass.server.models.config import spec_from_config
from roiclass.server.models.normalization import IMAGENET_MEAN, IMAGENET_STD
from skimage import data

from .model_factory import make_classifier


def _model(tmp_path: Path, config: str, **onnx_kw) -> tuple[Path, Path]:
    folder = tmp_path / "cats"
    onnx = make_classifier(folder / "1" / "model.onnx", **onnx_kw)
    cfg = folder / "config.toml"
    cfg.write_text(textwrap.dedent(config))
    return cfg, onnx


def _spec(tmp_path: Path, config: str, **onnx_kw):
    cfg, onnx = _model(tmp_path, config, **onnx_kw)
    return spec_from_config(cfg, onnx, "1", "cats")


FULL = """
    name = "tabby"
    classes_file = "classes.txt"
    [input]
    width = 32
    height = 32
    channel_order = "bgr"
    layout = "NCHW"
    normalization = "custom"
    mean = [127.0, 126.0, 125.0]
    std = [128.0, 129.0, 130.0]
    resize = "center_crop"
    crop_fraction = 0.875
    border = "replicate"
    fill = 114
    dtype = "float32"
    [output]
    activation = "none"
    [batching]
    max_batch_size = 8
    max_queue_delay_us = 250
    max_queue_size = 100
    [instances]
    per_device = 2
    allow_cpu_fallback = false
    [defaults]
    top_k = 3
    min_confidence = 0.25
    [warmup]
    golden_image = "golden.png"
    expected_class = 2
    [heatmap]
    patch_size = 8
    stride = 4
    max_side = 128
"""


def test_every_key_lands_in_the_spec(tmp_path):
    cfg, onnx = _model(tmp_path, FULL)
    (cfg.parent / "classes.txt").write_text("a\nb\nc\nd\n\n")
    Image.fromarray(data.chelsea()).save(cfg.parent / "golden.png")
    spec = spec_from_config(cfg, onnx, "1", "cats")
    assert spec.name == "tabby" and spec.version == "1" and spec.format == "roiclass"
    assert spec.classes == ("a", "b", "c", "d")
    assert (spec.input_width, spec.input_height, spec.channels) == (32, 32, 3)
    assert spec.channel_order == "BGR" and spec.layout == "NCHW" and spec.extract_bands is None
    assert spec.normalization == "custom"
    assert spec.mean == (127.0, 126.0, 125.0) and spec.std == (128.0, 129.0, 130.0)
    assert (spec.resize, spec.crop_fraction, spec.border, spec.fill) == ("center_crop", 0.875, "replicate", 114.0)
    assert spec.softmax is False and spec.input_dtype == "float32"
    assert (spec.max_batch_size, spec.max_queue_delay_us, spec.max_queue_size) == (8, 250, 100)
    assert spec.instances_per_device == 2 and spec.allow_cpu_fallback is False
    assert spec.top_k == 3 and spec.min_confidence == 0.25
    assert spec.golden_image == cfg.parent / "golden.png" and spec.golden_class == 2
    assert (spec.heatmap.patch_size, spec.heatmap.stride, spec.heatmap.max_side) == (8, 4, 128)
    assert spec.source == cfg and spec.onnx_path == onnx


def test_defaults_come_from_the_onnx_shape(tmp_path):
    spec = _spec(tmp_path, 'classes = ["w", "x", "y", "z"]\n', layout="NHWC", height=24, width=40)
    assert (spec.input_width, spec.input_height, spec.layout) == (40, 24, "NHWC")
    assert spec.channel_order == "RGB" and spec.channels == 3 and spec.input_dtype == "float32"
    assert spec.name == "cats" and spec.softmax is True and spec.max_batch_size == 32
    assert spec.normalization == "unit" and spec.mean == (0.0,) * 3 and spec.std == (255.0,) * 3


def test_gray_float16_fixed_batch_model(tmp_path):
    spec = _spec(tmp_path, "", channels=1, dtype="float16", batch=1, num_classes=3)
    assert spec.channel_order == "GRAY" and spec.channels == 1
    assert spec.input_dtype == "float16" and spec.max_batch_size == 1
    assert spec.classes == ("0", "1", "2")


@pytest.mark.parametrize(
    "name, mean, std",
    [
        ("none", (0.0,) * 3, (1.0,) * 3),
        ("unit", (0.0,) * 3, (255.0,) * 3),
        ("half", (0.0,) * 3, (255.0,) * 3),
        ("symmetric", (127.5,) * 3, (127.5,) * 3),
        ("full", (127.5,) * 3, (127.5,) * 3),
        ("IMAGENET", IMAGENET_MEAN, IMAGENET_STD),
    ],
)
def test_named_normalizations(tmp_path, name, mean, std):
    spec = _spec(tmp_path, f'[input]\nnormalization = "{name}"\n')
    np.testing.assert_allclose(spec.mean, mean)
    np.testing.assert_allclose(spec.std, std)
    assert spec.normalization == {"half": "unit", "full": "symmetric"}.get(name.lower(), name.lower())


def test_imagenet_statistics_follow_bgr_order(tmp_path):
    spec = _spec(tmp_path, '[input]\nnormalization = "imagenet"\nchannel_order = "BGR"\n')
    np.testing.assert_allclose(spec.mean, IMAGENET_MEAN[::-1])
    assert spec.mean[0] == pytest.approx(0.406 * 255)


def test_explicit_mean_overrides_a_named_normalization(tmp_path):
    spec = _spec(tmp_path, '[input]\nnormalization = "imagenet"\nmean = [100]\n')
    assert spec.normalization == "custom" and spec.mean == (100.0,) * 3
    np.testing.assert_allclose(spec.std, IMAGENET_STD)


def test_extract_bands_set_the_channel_order(tmp_path):
    spec = _spec(tmp_path, "[input]\nextract_bands = [2, 1, 0]\n")
    assert spec.extract_bands == (2, 1, 0) and spec.channel_order == "bands:2,1,0" and spec.channels == 3


def test_dynamic_sides_need_width_and_height(tmp_path):
    with pytest.raises(ModelConfigError, match=r"config\.toml: the model input width is dynamic.*set width"):
        _spec(tmp_path, "", height="h", width="w")
    spec = _spec(tmp_path, "[input]\nwidth = 20\nheight = 10\n", height="h", width="w")
    assert (spec.input_width, spec.input_height) == (20, 10)


@pytest.mark.parametrize(
    "config, message",
    [
        ("colour = 1\n", r"config\.toml: unknown key 'colour'; allowed: name, classes_file, classes, input"),
        ("[input]\nzoom = 2\n", r"unknown key 'input\.zoom'; allowed: input\.width, .*input\.dtype"),
        ('[input]\nlayout = "CHW"\n', r"input\.layout = 'CHW' is not allowed; allowed: NCHW, NHWC"),
        ('[input]\nnormalization = "zscore"\n', r"allowed: none, unit, symmetric, imagenet, half, full, custom"),
        ('[input]\nresize = "fit"\n', r"input\.resize = 'fit' is not allowed; allowed: stretch, letterbox, center_crop"),
        ('[input]\nchannel_order = "RGBA"\n', r"allowed: RGB, BGR, GRAY"),
        ('[output]\nactivation = "sigmoid"\n', r"output\.activation = 'sigmoid' is not allowed; allowed: softmax, none"),
        ('[input]\nwidth = "32"\n', r"input\.width must be of type integer, got '32'"),
        ("[input]\ncrop_fraction = 0\n", r"input\.crop_fraction = 0 is out of range; allowed: \(0, 1\]"),
        ("[defaults]\nmin_confidence = 1.5\n", r"defaults\.min_confidence = 1\.5 is out of range; allowed: \[0, 1\]"),
        ("[batching]\nmax_batch_size = 0\n", r"batching\.max_batch_size = 0 is out of range"),
        ("input = 3\n", r"input must be a table"),
        ('[input]\nnormalization = "custom"\nmean = [1, 2, 3]\n', r"normalization 'custom' needs both mean and std"),
        ("[input]\nstd = [1, 0, 1]\n", r"std values must be > 0"),
        ("[input]\nmean = [1, 2]\n", r"mean has 2 values; the model input has 3 channels"),
        ("[input]\nwidth = 64\n", r"width = 64 but the model input width is fixed at 32"),
        ('[input]\nchannel_order = "GRAY"\n', r"the model input has 3 channels .* channel order GRAY gives 1"),
        ('[input]\ndtype = "float16"\n', r"dtype = float16 but the model input is float32"),
        ('classes = ["a", "b"]\n', r"2 class names given but the model outputs 4 values"),
        ('classes = ["a"]\nclasses_file = "c.txt"\n', r"either classes or classes_file, not both"),
        ('classes_file = "missing.txt"\n', r"classes file .*missing\.txt cannot be read"),
        ('[warmup]\ngolden_image = "nope.png"\n', r"warmup\.golden_image .*nope\.png does not exist"),
        ("[warmup]\nexpected_class = 1\n", r"warmup\.expected_class needs warmup\.golden_image"),
        ('name = "no spaces"\n', r"model name 'no spaces' is not allowed"),
        ("[input\n", r"not valid TOML"),
    ],
)
def test_bad_configs_name_the_file_key_and_allowed_values(tmp_path, config, message):
    with pytest.raises(ModelConfigError, match=message) as info:
        _spec(tmp_path, config)
    assert "config.toml" in str(info.value)


def test_golden_class_must_be_a_class_index(tmp_path):
    cfg, onnx = _model(tmp_path, '[warmup]\ngolden_image = "g.png"\nexpected_class = 4\n')
    Image.fromarray(data.chelsea()[:64, :64]).save(cfg.parent / "g.png")
    with pytest.raises(ModelConfigError, match=r"expected_class = 4 is out of range; allowed: 0\.\.3"):
        spec_from_config(cfg, onnx, "1", "cats")


def test_fixed_batch_limits_max_batch_size(tmp_path):
    with pytest.raises(ModelConfigError, match=r"batch size is fixed at 1 .*set max_batch_size = 1"):
        _spec(tmp_path, "[batching]\nmax_batch_size = 8\n", batch=1)


def test_classes_file_with_a_hole_is_refused(tmp_path):
    cfg, onnx = _model(tmp_path, 'classes_file = "classes.txt"\n')
    (cfg.parent / "classes.txt").write_text("a\n\nc\nd\n")
    with pytest.raises(ModelConfigError, match=r"classes\.txt line 2 is empty"):
        spec_from_config(cfg, onnx, "1", "cats")
