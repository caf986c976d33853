"""Model statuses -> ModelInfo: the one version order, states, NotFound messages."""
from __future__ import annotations

import pytest

from roiclass.server.engine import InstanceStatus, ModelVersionStatus
from roiclass.server.errors import NotFound
from roiclass.server.model_info import model_infos
from roiclass.server.states import ModelState
from roiclass.v1 import classifier_pb2 as pb
from tests.unit.engine.conftest import make_onnx, make_spec


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    onnx = make_onnx(tmp_path_factory.mktemp("info") / "tiny.onnx", classes=3)
    # The newest version, 10, has a class more: it describes the model.
    return {v: make_spec(onnx, name="cats", version=v, classes=4 if v == "10" else 3)
            for v in ("2", "10", "beta")}


def _statuses(specs):
    cpu = [InstanceStatus("cpu", "CPUExecutionProvider", 0, True)]
    return [
        ModelVersionStatus("cats", "10", ModelState.READY, "", specs["10"], cpu),
        ModelVersionStatus("cats", "beta", ModelState.READY, "", specs["beta"], cpu),
        ModelVersionStatus("cats", "2", ModelState.LOADING, "", specs["2"], []),
        ModelVersionStatus("owls", "1", ModelState.FAILED, "no model.onnx", None, []),
    ]


def test_versions_list_names_first_then_integers_in_numeric_order(specs):
    cats, owls = model_infos(_statuses(specs))
    assert (cats.name, owls.name) == ("cats", "owls")
    assert [v.version for v in cats.versions] == ["beta", "2", "10"]
    assert [v.state for v in cats.versions] == [pb.ModelVersionInfo.READY, pb.ModelVersionInfo.LOADING,
                                                pb.ModelVersionInfo.READY]
    assert [(i.device, i.provider, i.healthy) for i in cats.versions[2].instances] == [
        ("cpu", "CPUExecutionProvider", True)]
    assert list(cats.classes) == ["c0", "c1", "c2", "c3"] and cats.input_width == 16
    (failed,) = owls.versions
    assert (failed.state, failed.reason) == (pb.ModelVersionInfo.FAILED, "no model.onnx")
    assert not owls.classes  # no version has a spec


def test_every_state_has_its_proto_value():
    for state in ModelState:
        (info,) = model_infos([ModelVersionStatus("m", "1", state, "", None, [])])
        assert pb.ModelVersionInfo.State.Name(info.versions[0].state) == state.value


def test_one_model_or_one_version_by_name(specs):
    (info,) = model_infos(_statuses(specs), name="cats", version="2")
    assert [v.version for v in info.versions] == ["2"]
    with pytest.raises(NotFound, match=r"model 'dogs' not found; available models: cats, owls"):
        model_infos(_statuses(specs), name="dogs")
    with pytest.raises(NotFound, match=r"model 'cats' has no version '3'; available versions: beta, 2, 10"):
        model_infos(_statuses(specs), name="cats", version="3")


def test_pipeline_fields_come_from_the_spec(specs):
    from dataclasses import replace

    from roiclass.server.models.pipeline import ChildSpec, DetectorSpec, parse_tta

    spec = replace(specs["10"], children=(ChildSpec("color", "2", ("c1", 3), 0.5, "expand:1.5", 1.5),),
                   detector=DetectorSpec("yolov8", 0.3, 0.5, classes=(0, "c2"), letterbox="topleft"),
                   default_detector="boxes", tta=parse_tta("rotations:3:5"))
    (info,) = model_infos([ModelVersionStatus("cats", "10", ModelState.READY, "", spec, [])])
    assert [(c.model, c.version, list(c.when), c.min_confidence, c.roi) for c in info.children] == [
        ("color", "2", ["c1", "c3"], 0.5, "expand:1.5")]  # indices shown as class names
    d = info.detector
    assert (d.format, round(d.confidence, 6), d.iou, list(d.classes), d.letterbox) == (
        "yolov8", 0.3, 0.5, ["c0", "c2"], "topleft")
    assert (info.default_detector, info.default_tta) == ("boxes", "rotations:3:5")
    (plain,) = model_infos([ModelVersionStatus("cats", "2", ModelState.READY, "", specs["2"], [])])
    assert not plain.children and not plain.HasField("detector") and plain.default_tta == ""
