"""Esri model definitions read as Esri writes them: Esri's published ONNX example
(../shared/fixtures/esri/trained.emd, with a stand-in ONNX of its input shape),
a .dlpk of it, and the normalization each key asks for, checked through the
engine's kernel arguments and the kernel against a NumPy rendering of Esri's
formulas.

References for the formulas:
- DataRange: the range the model expects; ArcGIS rescales the chip from the
  raster's range (here the sample type's full range) into it.
- NormalizationStats: arcgis.learn (arcgis/learn/_data.py, `_tensor_scaler`:
  (x - band_min) / ((band_max - band_min) + 1e-05), then normalized with the
  scaled statistics; arcgis/learn/_utils/common.py denormalizes with
  `_scaled_std_values[_extract_bands]` / `_scaled_mean_values[_extract_bands]`:
  one value per raster band, indexed by ExtractBands).
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from roiclass.ext import preprocess_rois
from roiclass.server import formats
from roiclass.server.engine.channels import kernel_args
from roiclass.server.models import load_model_path
from roiclass.server.models.emd import read_dlpk, read_emd
from tests.esri_files import ESRI_EMD, SHARED_ESRI_EMD
from tests.onnx_files import save_graph

FIXTURE = ESRI_EMD
NAMES = ("Evergreen Forest", "Grassland/Herbaceous", "Bare Land", "Open Water", "Scrub/Shrub",
         "Impervious Surface")


def stand_in(path: Path, channels: int = 4, size: int = 256, classes: int = 6) -> Path:
    """An ONNX of the example's input shape [N, 4, 256, 256] -> [N, 6] logits."""
    x = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", channels, size, size])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", classes])
    w = np.arange(channels * classes, dtype=np.float32).reshape(channels, classes) / 10
    nodes = [helper.make_node("ReduceMean", ["data"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["scores"])]
    graph = helper.make_graph(nodes, "stand_in", [x], [y],
                              [helper.make_tensor("W", TensorProto.FLOAT, list(w.shape), w.ravel())])
    return save_graph(graph, path)


def tensor(spec, image: np.ndarray, fmt) -> np.ndarray:
    """The model input of the whole image, through the engine's kernel arguments."""
    ka = kernel_args(spec, fmt)
    h, w = image.shape[:2]
    out = np.empty((1, spec.channels, spec.input_height, spec.input_width), np.float32)
    preprocess_rois(image, [[0, 0, w, h, 0]], out, channel_map=ka.channel_map, mean=ka.mean, std=ka.std,
                    fill=ka.fill)
    return out[0]


@pytest.fixture
def esri_example(tmp_path) -> Path:
    shutil.copy(FIXTURE, tmp_path / "trained.emd")
    stand_in(tmp_path / "trained.onnx")
    return tmp_path / "trained.emd"


def test_esri_example_loads_as_esri_wrote_it(esri_example):
    info = read_emd(esri_example)
    spec = info.spec
    assert json.loads(FIXTURE.read_text())["Framework"] == "Onnx"  # Esri's spelling
    assert (spec.input_width, spec.input_height, spec.channels) == (256, 256, 4)
    assert spec.extract_bands == (0, 1, 2, 3)  # 0-based, was refused as "1-based" before
    assert spec.classes == NAMES and info.class_values == (0, 1, 2, 3, 4, 5)
    assert info.data["ModelPadding"] == 64  # accepted, left to the chipping tool
    (again,) = load_model_path(esri_example)
    assert again.extract_bands == spec.extract_bands


@pytest.mark.parametrize("dtype, full", [(np.uint8, 255.0), (np.uint16, 65535.0), (np.float32, 1.0)])
def test_data_range_is_the_range_the_model_expects(esri_example, dtype, full):
    """DataRange [0, 1]: the raster's full range becomes 0..1 (0..255 was fed before)."""
    spec = read_emd(esri_example).spec
    rng = np.random.default_rng(1)
    img = (rng.random((256, 256, 4)) * full).astype(dtype)
    got = tensor(spec, img, formats.for_array(np.dtype(dtype), 4, "BANDS"))
    expected = img.astype(np.float64).transpose(2, 0, 1) / full  # lo + x / full * (hi - lo)
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_data_range_other_than_zero_one(tmp_path):
    emd = json.loads(FIXTURE.read_text())
    emd["DataRange"] = [-1.0, 3.0]
    (tmp_path / "m.emd").write_text(json.dumps(emd))
    stand_in(tmp_path / "trained.onnx")
    spec = read_emd(tmp_path / "m.emd").spec
    img = np.random.default_rng(2).integers(0, 65536, (256, 256, 4)).astype(np.uint16)
    got = tensor(spec, img, formats.generic(4, "uint16"))
    expected = -1.0 + img.astype(np.float64).transpose(2, 0, 1) / 65535.0 * 4.0
    np.testing.assert_allclose(got, expected, atol=2e-5)


def _stats_emd(tmp_path, bands=(3, 0, 2)) -> tuple[Path, dict]:
    """An arcgis.learn multispectral .emd: 5 raster bands, 3 extracted."""
    stats = {
        "band_min_values": [10.0, 200.0, 0.0, 55.0, 7.0],
        "band_max_values": [4000.0, 9000.0, 1000.0, 30000.0, 65000.0],
        "band_mean_values": [900.0, 3000.0, 400.0, 8000.0, 1000.0],
        "band_std_values": [300.0, 800.0, 100.0, 5000.0, 90.0],
        "scaled_min_values": [0.0] * 5, "scaled_max_values": [1.0] * 5,
        "scaled_mean_values": [0.22, 0.32, 0.4, 0.26, 0.015],
        "scaled_std_values": [0.075, 0.09, 0.1, 0.17, 0.0014],
    }
    emd = {"Framework": "ONNX", "ModelFile": "ms.onnx", "ModelType": "ObjectClassification",
           "ImageWidth": 32, "ImageHeight": 32, "ExtractBands": list(bands), "IsMultispectral": True,
           "DataRange": [0, 1], "BatchSize": 16, "NormalizationStats": stats,
           "Classes": [{"ClassValue": 10, "ClassName": "healthy"}, {"ClassValue": 20, "ClassName": "unhealthy"}]}
    stand_in(tmp_path / "ms.onnx", channels=len(bands), size=32, classes=2)
    path = tmp_path / "ms.emd"
    path.write_text(json.dumps(emd))
    return path, stats


def esri_normalize(chip: np.ndarray, stats: dict, bands) -> np.ndarray:
    """arcgis.learn on an (H, W, raster bands) chip: min-max scale every band with
    its own statistics, extract the bands, normalize with the scaled statistics."""
    lo, hi = np.array(stats["band_min_values"]), np.array(stats["band_max_values"])
    scaled = (chip.astype(np.float64) - lo) / ((hi - lo) + 1e-05)
    picked = scaled[..., list(bands)]
    mean = np.array(stats["scaled_mean_values"])[list(bands)]
    std = np.array(stats["scaled_std_values"])[list(bands)]
    return ((picked - mean) / std).transpose(2, 0, 1)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_normalization_stats_as_arcgis_learn_applies_them(tmp_path, dtype):
    path, stats = _stats_emd(tmp_path)
    info = read_emd(path)
    spec = info.spec
    assert spec.raw_units and spec.extract_bands == (3, 0, 2) and spec.max_batch_size == 16
    assert spec.classes == ("healthy", "unhealthy") and info.class_values == (10, 20)
    img = np.random.default_rng(3).integers(0, 30000, (32, 32, 5)).astype(dtype)
    got = tensor(spec, img, formats.for_array(np.dtype(dtype), 5, "BANDS"))
    np.testing.assert_allclose(got, esri_normalize(img, stats, (3, 0, 2)), rtol=1e-5, atol=1e-3)


def test_dlpk_of_the_esri_example_loads_and_normalizes_the_same(esri_example, tmp_path):
    pkg = tmp_path / "landcover.dlpk"
    with zipfile.ZipFile(pkg, "w") as zf:
        zf.write(esri_example, "trained.emd")
        zf.write(esri_example.with_suffix(".onnx"), "trained.onnx")
    info = read_dlpk(pkg, tmp_path / "cache")
    direct = read_emd(esri_example).spec
    assert (info.spec.name, info.spec.format) == ("landcover", "dlpk")
    assert (info.spec.extract_bands, info.spec.mean, info.spec.std) == (direct.extract_bands, direct.mean, direct.std)
    img = np.random.default_rng(4).integers(0, 65536, (256, 256, 4)).astype(np.uint16)
    fmt = formats.generic(4, "uint16")
    assert np.array_equal(tensor(info.spec, img, fmt), tensor(direct, img, fmt))


def _rgb_emd(tmp_path, **keys) -> Path:
    """A 3-band .emd without ExtractBands: each key's effect on its own."""
    stand_in(tmp_path / "rgb.onnx", channels=3, size=32, classes=2)
    path = tmp_path / "rgb.emd"
    path.write_text(json.dumps({"Framework": "ONNX", "ModelFile": "rgb.onnx", **keys}))
    return path


def test_data_range_alone_is_the_models_range(tmp_path):
    spec = read_emd(_rgb_emd(tmp_path, DataRange=[0, 1])).spec
    img = np.random.default_rng(5).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(tensor(spec, img, "RGB8"), img.transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_normalization_stats_alone_are_per_band_in_raw_units(tmp_path):
    stats = {"band_min_values": [0, 10, 20], "band_max_values": [255, 200, 250],
             "scaled_mean_values": [0.5, 0.4, 0.3], "scaled_std_values": [0.2, 0.25, 0.3]}
    spec = read_emd(_rgb_emd(tmp_path, NormalizationStats=stats)).spec
    img = np.random.default_rng(6).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(tensor(spec, img, "RGB8"), esri_normalize(img, stats, (0, 1, 2)), rtol=1e-5, atol=1e-4)


def test_class_value_and_class_name_spellings_and_batch_size(tmp_path):
    classes = [{"ClassValue": 3, "ClassName": "damaged"}, {"Value": 7, "Name": "undamaged"}]
    info = read_emd(_rgb_emd(tmp_path, Classes=classes, BatchSize=8, ModelPadding=32, IsMultispectral=False))
    assert info.spec.classes == ("damaged", "undamaged") and info.class_values == (3, 7)
    assert info.spec.max_batch_size == 8


@pytest.mark.skipif(not SHARED_ESRI_EMD.is_file(), reason="no ../shared/fixtures beside this clone")
def test_the_copy_is_the_shared_fixture_byte_for_byte():
    assert ESRI_EMD.read_bytes() == SHARED_ESRI_EMD.read_bytes()
