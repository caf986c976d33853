"""Every model source served side by side by one real server: a repository (with
a broken model that fails alone), an Esri .emd, a .dlpk and the imgproxy flags."""
from __future__ import annotations

import json
import zipfile

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.server.app import BackgroundServer
from roiclass.server.cli import build_parser, config_from_args
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request
from tests.unit.models.model_factory import make_classifier

# make_classifier: class k reacts to input channel k % C (class 3 twice as much to channel 0).


def _emd(folder, name: str) -> dict:
    make_classifier(folder / f"{name}.onnx", num_classes=3, height=16, width=16)
    return {"Framework": "ONNX", "ModelFile": f"{name}.onnx", "ImageWidth": 16, "ImageHeight": 16,
            "ExtractBands": [3, 2, 1], "DataRange": [0, 1],
            "Classes": [{"Value": 1, "Name": "Building", "Color": [255, 0, 0]},
                        {"Value": 5, "Name": "Road", "Color": [0, 255, 0]},
                        {"Value": 9, "Name": "Water", "Color": [0, 0, 255]}]}


@pytest.fixture(scope="module")
def sources_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    repo = root / "repo"
    make_classifier(repo / "colors" / "1" / "model.onnx", num_classes=4, height=32, width=32)
    (repo / "colors" / "config.toml").write_text('classes = ["red", "green", "blue", "reddest"]\n')
    make_classifier(repo / "broken" / "1" / "model.onnx", num_classes=4)
    (repo / "broken" / "config.toml").write_text('classes = ["a", "b", "c", "d"]\n[input]\nlayout = "CHWN"\n')
    emd_dir = root / "esri"
    emd_dir.mkdir()
    (emd_dir / "landcover.emd").write_text(json.dumps(_emd(emd_dir, "landcover")))
    dlpk_dir = root / "pkg"
    dlpk_dir.mkdir()
    emd = _emd(dlpk_dir, "parcels")
    with zipfile.ZipFile(root / "parcels.dlpk", "w") as zf:
        zf.writestr("parcels.emd", json.dumps(emd))
        zf.write(dlpk_dir / "parcels.onnx", "parcels.onnx")
    make_classifier(root / "net.onnx", num_classes=4, height=32, width=32)
    (root / "classes.txt").write_text("r\ng\nb\nrr\n")
    argv = ["--port", "0", "--models", str(repo), "--model", str(emd_dir / "landcover.emd"),
            "--model", str(root / "parcels.dlpk"), "--default-model", "colors",
            "--onnx", str(root / "net.onnx"), "--classes", str(root / "classes.txt"), "--net-size", "32",
            "--normalization", "imagenet", "--layout", "nchw", "--threshold", "0.5", "--name", "proxy"]
    parser = build_parser()
    srv = BackgroundServer(config_from_args(parser.parse_args(argv), parser)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def channel(sources_server):
    with grpc.insecure_channel(sources_server.address) as ch:
        yield ch


def _solid(rgb) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (40, 40, len(rgb))).copy()


def test_every_source_is_listed_and_the_broken_one_fails_alone(channel):
    stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
    models = {m.name: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models}
    assert {"colors", "broken", "landcover", "parcels", "proxy"} <= set(models)
    broken = models["broken"].versions[0]
    assert broken.state == pb.ModelVersionInfo.FAILED and "layout" in broken.reason
    for name in ("colors", "landcover", "parcels", "proxy"):
        assert models[name].versions[-1].state == pb.ModelVersionInfo.READY, name
    assert (models["landcover"].format, models["parcels"].format, models["proxy"].format) == ("emd", "dlpk", "imgproxy")
    health = health_pb2_grpc.HealthStub(channel)
    check = lambda s: health.Check(health_pb2.HealthCheckRequest(service=s), timeout=10).status  # noqa: E731
    assert check("broken") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert check("colors") == check("") == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyObject(request(raw_image(_solid((0, 0, 255))), model="broken"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "layout" in err.value.details()


def test_repository_model_classifies_colours(channel):
    stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
    assert stub.ClassifyObject(request(raw_image(_solid((0, 0, 255)))), timeout=10).results[0].class_name == "blue"
    assert stub.ClassifyObject(request(raw_image(_solid((0, 255, 0)))), timeout=10).results[0].class_name == "green"


@pytest.mark.parametrize("model", ["landcover", "parcels"])
def test_esri_models_read_their_extract_bands(channel, model):
    # ExtractBands [3, 2, 1] (0-based): model channel 0 <- band 3 (alpha), 1 <- band 2 (blue), 2 <- band 1 (green).
    stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
    alpha_only = raw_image(_solid((0, 0, 0, 255)))
    blue_only = raw_image(_solid((0, 0, 255, 0)))
    assert stub.ClassifyObject(request(alpha_only, model=model), timeout=10).results[0].class_name == "Building"
    assert stub.ClassifyObject(request(blue_only, model=model), timeout=10).results[0].class_name == "Road"
    with pytest.raises(grpc.RpcError) as err:  # 3 bands cannot feed band 3
        stub.ClassifyObject(request(raw_image(_solid((1, 2, 3))), model=model), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "image.raw.pixel_format" in err.value.details()


def test_imgproxy_model_applies_its_threshold(channel):
    stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
    res = stub.ClassifyObject(request(raw_image(_solid((0, 0, 255))), model="proxy", top_k=0), timeout=10)
    result = res.results[0]
    assert result.class_name == "b"
    assert all(c.confidence >= 0.5 for c in result.confidences)
    assert len(result.confidences) < 4
