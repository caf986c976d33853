"""Esri .emd and .dlpk models -> specs."""
from __future__ import annotations

import json
import zipfile

import pytest
from roiclass.server.models import LoadFailure, ModelConfigError, load_model_path, load_repository
from roiclass.server.models.emd import read_dlpk, read_emd

from .model_factory import make_classifier

CLASSES = [
    {"Value": 1, "Name": "Building", "Color": [255, 0, 0]},
    {"Value": 5, "Name": "Road", "Color": [0, 255, 0]},
    {"Value": 9, "Name": "Water", "Color": [0, 0, 255]},
]


def _emd(folder, **overrides):
    emd = {
        "Framework": "ONNX",
        "ModelConfiguration": "Custom",
        "ModelType": "ObjectClassification",
        "ModelFile": "weights/landcover.onnx",
        "ImageWidth": 16,
        "ImageHeight": 16,
        "ExtractBands": [3, 2, 1],  # 0-based, as Esri writes them
        "Classes": CLASSES,
        "DataRange": [0, 10000],
    }
    emd.update(overrides)
    make_classifier(folder / "weights" / "landcover.onnx", num_classes=3, height=16, width=16)
    path = folder / "landcover.emd"
    path.write_text(json.dumps({k: v for k, v in emd.items() if v is not None}))
    return path


def test_emd_fields_map_to_the_spec(tmp_path):
    info = read_emd(_emd(tmp_path))
    spec = info.spec
    assert (spec.name, spec.version, spec.format) == ("landcover", "1", "emd")
    assert spec.onnx_path == (tmp_path / "weights" / "landcover.onnx").resolve()
    assert (spec.input_width, spec.input_height) == (16, 16)
    assert spec.extract_bands == (3, 2, 1) and spec.channel_order == "bands:3,2,1" and spec.channels == 3
    assert spec.classes == ("Building", "Road", "Water") and info.class_values == (1, 5, 9)
    # DataRange [0, 10000]: the model's range; 0..255 (the sample type's range) -> 0..10000
    assert spec.normalization == "custom" and spec.mean == (0.0,) * 3 and spec.std == (255 / 10000,) * 3
    assert not spec.raw_units
    assert spec.softmax is True  # the graph ends in logits


def test_emd_without_optional_fields_uses_the_onnx_file(tmp_path):
    path = _emd(tmp_path, ImageWidth=None, ImageHeight=None, ExtractBands=None, Classes=None, DataRange=None,
                Framework=None)
    (spec,) = load_model_path(path)
    assert (spec.input_width, spec.input_height, spec.channel_order) == (16, 16, "RGB")
    assert spec.classes == ("0", "1", "2") and spec.normalization == "unit" and spec.std == (255.0,) * 3


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"Framework": "PyTorch"}, r"Framework 'PyTorch' is not supported; roiclass supports Framework \"ONNX\""),
        ({"ModelFile": "model.pth"}, r"ModelFile 'model\.pth' is not supported"),
        ({"ModelFile": None}, r"ModelFile .* is missing"),
        ({"ExtractBands": [0, -1, 2]}, r"ExtractBands must be a list of 0-based band indices"),
        ({"IsMultispectral": "yes"}, r"IsMultispectral must be true or false"),
        ({"BatchSize": 0}, r"BatchSize must be a positive integer"),
        ({"NormalizationStats": {"band_min_values": [0]}}, r"NormalizationStats.band_max_values must be a list"),
        ({"NormalizationStats": {"band_min_values": [0, 0], "band_max_values": [1, 1]}},
         r"NormalizationStats has 2 values per list but ExtractBands reads band 3"),
        ({"ImageWidth": 20}, r"width = 20 but the model input width is fixed at 16"),
        ({"Classes": CLASSES[:2]}, r"2 class names given but the model outputs 3 values"),
        ({"DataRange": [5, 5]}, r"DataRange must be \[min, max\] with min < max"),
        ({"Classes": [{"Value": "x", "Name": "a"}] * 3}, r"Classes\[0\]\.Value must be an integer"),
    ],
)
def test_bad_emd_is_explained(tmp_path, overrides, message):
    with pytest.raises(ModelConfigError, match=message):
        read_emd(_emd(tmp_path, **overrides))


def test_pytorch_emd_is_a_load_failure(tmp_path):
    (fail,) = load_model_path(_emd(tmp_path, Framework="PyTorch", ModelFile="model.pth"))
    assert isinstance(fail, LoadFailure) and "PyTorch" in fail.reason and "ONNX" in fail.reason


def _dlpk(tmp_path, name="landcover.dlpk", extra: dict[str, bytes] | None = None):
    src = tmp_path / "src"
    emd = _emd(src)
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(emd, "landcover.emd")
        zf.write(src / "weights" / "landcover.onnx", "weights/landcover.onnx")
        for arc, blob in (extra or {}).items():
            zf.writestr(arc, blob)
    return path


def test_dlpk_is_extracted_once_into_the_cache(tmp_path):
    cache = tmp_path / "cache"
    path = _dlpk(tmp_path)
    (spec,) = load_model_path(path, dlpk_cache=cache)
    assert (spec.name, spec.format, spec.source) == ("landcover", "dlpk", path)
    assert spec.onnx_path.is_relative_to(cache.resolve()) and spec.onnx_path.is_file()
    assert spec.classes == ("Building", "Road", "Water")
    again = read_dlpk(path, cache).spec
    assert again.onnx_path == spec.onnx_path
    assert [p.name for p in cache.iterdir()] == [spec.onnx_path.parent.parent.name]


def test_dlpk_entries_outside_the_folder_are_refused(tmp_path):
    path = _dlpk(tmp_path, extra={"../evil.txt": b"x"})
    with pytest.raises(ModelConfigError, match=r"entry '\.\./evil\.txt' points outside the package"):
        read_dlpk(path, tmp_path / "cache")
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_dlpk_is_a_load_failure(tmp_path):
    (tmp_path / "broken.dlpk").write_bytes(b"PK no zip")
    (fail,) = load_model_path(tmp_path / "broken.dlpk", dlpk_cache=tmp_path / "cache")
    assert isinstance(fail, LoadFailure) and "not a valid .dlpk" in fail.reason


def test_esri_models_in_a_repository_take_the_folder_name(tmp_path):
    _emd(tmp_path / "repo" / "parcels")
    dl = _dlpk(tmp_path)
    (tmp_path / "repo" / "roads").mkdir()
    dl.rename(tmp_path / "repo" / "roads" / "roads_v2.dlpk")
    got = {s.name: s for s in load_repository(tmp_path / "repo", dlpk_cache=tmp_path / "cache")}
    assert set(got) == {"parcels", "roads"}
    assert got["parcels"].format == "emd" and got["roads"].format == "dlpk"
