"""Repository folders and --model paths -> specs and LoadFailures."""
from __future__ import annotations

from pathlib import Path

import pytest
import roiclass.models
from roiclass.server.models import (
    LoadFailure,
    ModelConfigError,
    ModelSpec,
    builtin_repository,
    load_model_path,
    load_repository,
)

from .model_factory import make_classifier


def _by_key(items):
    return {(i.name, i.version): i for i in items}


def test_versions_sort_numerically_and_share_the_config(tmp_path):
    for v in ("2", "10", "1", "beta"):
        make_classifier(tmp_path / "cats" / v / "model.onnx")
    (tmp_path / "cats" / "config.toml").write_text('classes = ["a", "b", "c", "d"]\n[defaults]\ntop_k = 2\n')
    (tmp_path / "cats" / "assets").mkdir()  # no model inside: not a version
    items = load_repository(tmp_path)
    # roiclass.server.versions.version_key: names below integers, integers in numeric order.
    assert [(i.name, i.version) for i in items] == [("cats", "beta"), ("cats", "1"), ("cats", "2"), ("cats", "10")]
    assert all(isinstance(i, ModelSpec) and i.classes == ("a", "b", "c", "d") and i.top_k == 2 for i in items)
    assert items[3].onnx_path == tmp_path / "cats" / "10" / "model.onnx"


def test_model_onnx_without_version_folder_is_version_1(tmp_path):
    make_classifier(tmp_path / "dogs" / "model.onnx", num_classes=2)
    (tmp_path / "dogs" / "classes.txt").write_text("pug\nbeagle\n")
    (spec,) = load_repository(tmp_path)
    assert (spec.name, spec.version, spec.classes) == ("dogs", "1", ("pug", "beagle"))


def test_a_broken_model_fails_alone(tmp_path):
    make_classifier(tmp_path / "good" / "1" / "model.onnx")
    make_classifier(tmp_path / "bad_config" / "1" / "model.onnx")
    (tmp_path / "bad_config" / "config.toml").write_text('[input]\nlayout = "sideways"\n')
    make_classifier(tmp_path / "mixed" / "1" / "model.onnx")
    (tmp_path / "mixed" / "2").mkdir(parents=True)
    (tmp_path / "mixed" / "2" / "model.onnx").write_bytes(b"not an onnx file")
    (tmp_path / "torch" / "1").mkdir(parents=True)
    (tmp_path / "torch" / "1" / "model.pt").write_bytes(b"\x80\x02")
    (tmp_path / "empty").mkdir()
    (tmp_path / "_private").mkdir()  # skipped, as are .hidden and __pycache__
    (tmp_path / "README.md").write_text("not a model")
    got = _by_key(load_repository(tmp_path))
    assert isinstance(got["good", "1"], ModelSpec)
    assert isinstance(got["mixed", "1"], ModelSpec)
    bad = got["bad_config", ""]
    assert isinstance(bad, LoadFailure) and "input.layout = 'sideways' is not allowed" in bad.reason
    assert bad.source == tmp_path / "bad_config" / "config.toml"
    assert isinstance(got["mixed", "2"], LoadFailure) and "ONNX Runtime cannot load" in got["mixed", "2"].reason
    torch = got["torch", "1"]
    assert isinstance(torch, LoadFailure) and "PyTorch" in torch.reason and "ONNX" in torch.reason
    assert isinstance(got["empty", ""], LoadFailure) and "no model.onnx" in got["empty", ""].reason
    assert not any(k[0].startswith("_") for k in got)


def test_config_name_clash_keeps_the_first_folder(tmp_path):
    for folder in ("a_model", "b_model"):
        make_classifier(tmp_path / folder / "1" / "model.onnx")
        (tmp_path / folder / "config.toml").write_text('name = "same"\n')
    first, second = load_repository(tmp_path)
    assert isinstance(first, ModelSpec) and first.onnx_path.parent.parent.name == "a_model"
    assert isinstance(second, LoadFailure) and "'same' is already used by" in second.reason


def test_missing_repository_is_an_error(tmp_path):
    with pytest.raises(ModelConfigError, match="is not a folder"):
        load_repository(tmp_path / "nope")


def test_model_path_forms(tmp_path):
    onnx = make_classifier(tmp_path / "loose" / "net.onnx", num_classes=3)
    (spec,) = load_model_path(onnx)
    assert (spec.name, spec.version, spec.classes) == ("net", "1", ("0", "1", "2"))

    folder = tmp_path / "repo" / "birds"
    make_classifier(folder / "3" / "model.onnx", num_classes=2)
    cfg = folder / "config.toml"
    cfg.write_text('classes = ["owl", "jay"]\n')
    for path in (folder, cfg):
        (spec,) = load_model_path(path)
        assert (spec.name, spec.version, spec.classes, spec.source) == ("birds", "3", ("owl", "jay"), cfg)

    (fail,) = load_model_path(tmp_path / "absent.onnx")
    assert "does not exist" in fail.reason and "config.toml" in fail.reason
    (tmp_path / "w.pth").write_bytes(b"x")
    (fail,) = load_model_path(tmp_path / "w.pth")
    assert "PyTorch" in fail.reason and "ONNX models only" in fail.reason
    (tmp_path / "w.bin").write_bytes(b"x")
    (fail,) = load_model_path(tmp_path / "w.bin")
    assert "unsupported model path" in fail.reason


def test_version_1_twice_is_reported(tmp_path):
    make_classifier(tmp_path / "m" / "model.onnx")
    make_classifier(tmp_path / "m" / "1" / "model.onnx")
    got = load_model_path(tmp_path / "m")
    assert any(isinstance(i, LoadFailure) and "both model.onnx and folder 1/" in i.reason for i in got)


def test_builtin_repository_is_the_models_package():
    root = builtin_repository()
    assert root.is_dir() and root == Path(roiclass.models.__file__).parent
    items = load_repository(root)
    assert [i for i in items if isinstance(i, LoadFailure)] == []
    if (root / "efficientnet_lite0" / "config.toml").is_file():
        spec = next(i for i in items if i.name == "efficientnet_lite0")
        assert spec.version == "1" and len(spec.classes) == 1000 and spec.golden_image.is_file()
