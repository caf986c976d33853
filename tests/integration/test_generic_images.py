"""N-band images and polygon masks end to end: a real server on loopback and
the same request in-process (RoiclassServer's servicer, no gRPC: what
`roiclass geo --local` runs) give the same numbers, which are the kernel's.

The model is an identity (its output is its flattened input, activation none),
so each response holds the model input tensor itself."""
from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper

from roiclass.client import Classifier, ClassifierError, Frame
from roiclass.client.messages import build_request, roi_proto
from roiclass.ext import preprocess_rois
from roiclass.server.app import BackgroundServer, RoiclassServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2 as pb
from tests.onnx_files import save_graph

SIDE = 8
ROI = (2.5, 3.0, 16.0, 12.0, 20.0)
# a concave ring with a hole, partly outside the 24 x 20 image
POLYGON = [np.array([[1.0, 2.0], [30.0, 1.5], [12.0, 9.0], [20.0, 19.0], [3.0, 22.0]]),
           np.array([[8.0, 12.0], [11.0, 12.5], [9.5, 15.0]])]


def identity_model(folder, bands: list[int]) -> None:
    c = len(bands)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, SIDE, SIDE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c * SIDE * SIDE])
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"], axis=1)], "identity", [x], [y])
    save_graph(graph, folder / "1" / "model.onnx")
    names = ", ".join(f'"v{i}"' for i in range(c * SIDE * SIDE))
    (folder / "config.toml").write_text(
        f"classes = [{names}]\n[input]\nextract_bands = {bands}\nnormalization = \"unit\"\n"
        "[output]\nactivation = \"none\"\n")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("generic")
    identity_model(root / "bands", [4, 0, 2])
    identity_model(root / "colours", [2, 0, 1])
    return root


@pytest.fixture(scope="module")
def served(repo):
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, repositories=(repo,),
                                        engine=EngineConfig(devices="cpu", cpu_threads=1))).start()
    with Classifier(srv.address) as client:
        yield client
    srv.stop()


@pytest.fixture(scope="module")
def in_process(repo):
    app = RoiclassServer(ServerConfig(repositories=(repo,), engine=EngineConfig(devices="cpu", cpu_threads=1)))
    app.manager.load_all()
    yield app
    app.engine.close()


def as_tensor(result, channels: int) -> np.ndarray:
    """The identity model's output, back in (C, H, W) order."""
    values = np.empty(channels * SIDE * SIDE, np.float32)
    for c in result.confidences:  # unit normalization: every value >= 0 = min_confidence
        values[c.index] = c.confidence
    assert len(result.confidences) == len(values)
    return values.reshape(channels, SIDE, SIDE)


def kernel_tensor(image, cmap, std, polygons=None) -> np.ndarray:
    out = np.empty((1, len(cmap), SIDE, SIDE), np.float32)
    preprocess_rois(image, [ROI], out, channel_map=cmap, std=std, polygons=polygons)
    return out[0]


@pytest.mark.parametrize("dtype, std", [(np.uint8, 255.0), (np.uint16, 65535.0), (np.float32, 1.0)])
def test_n_band_image_with_a_polygon_reaches_the_model_as_the_kernel_makes_it(served, in_process, dtype, std):
    rng = np.random.default_rng(0)
    image = (rng.random((20, 24, 6)) * std).astype(dtype)
    remote = served.classify(image, [ROI], model="bands", top_k=0, polygons=[POLYGON]).results[0]
    got = as_tensor(remote, 3)
    expected = kernel_tensor(image, [4, 0, 2], std, [POLYGON])
    np.testing.assert_array_equal(got, expected)
    assert (got == 0).any() and (got != 0).any()  # the mask cut something, and kept something
    assert not np.array_equal(got, kernel_tensor(image, [4, 0, 2], std))
    request = build_request(image, [ROI], polygons=[POLYGON], model="bands", top_k=0)
    local = asyncio.run(in_process.servicer.classify(request, deadline=None, caller=""))
    assert [(c.class_index, c.confidence) for c in local.results[0].confidences] == \
        [(c.index, c.confidence) for c in remote.confidences]


def test_polygons_travel_in_pb_rois_of_a_stream(served):
    image = np.random.default_rng(1).integers(0, 65536, (20, 24, 6)).astype(np.uint16)
    frames = [Frame(image, rois=[roi_proto(ROI, POLYGON, 0)], request_id="masked"),
              Frame(image, rois=[ROI], request_id="plain")]
    masked, plain = list(served.stream(frames, model="bands", top_k=0))
    np.testing.assert_array_equal(as_tensor(masked.result.results[0], 3),
                                  kernel_tensor(image, [4, 0, 2], 65535.0, [POLYGON]))
    np.testing.assert_array_equal(as_tensor(plain.result.results[0], 3), kernel_tensor(image, [4, 0, 2], 65535.0))


def test_the_asyncio_client_sends_polygons_too(served):
    from roiclass.client import AsyncClassifier

    image = np.random.default_rng(2).integers(0, 256, (20, 24, 6)).astype(np.uint8)

    async def call():
        async with AsyncClassifier(served.address) as client:
            return await client.classify(image, [ROI], polygons=[POLYGON], model="bands", top_k=0)

    result = asyncio.run(call()).results[0]
    np.testing.assert_array_equal(as_tensor(result, 3), kernel_tensor(image, [4, 0, 2], 255.0, [POLYGON]))


def test_bands_of_named_formats_are_numbered_in_colour_order(served, chelsea):
    """The same picture as RGB8, BGR8 and a 3-band GENERIC gives the same tensor."""
    crop = np.ascontiguousarray(chelsea[100:120, 200:224])
    rgb = served.classify(crop, [ROI], model="colours", top_k=0).results[0]
    bgr = served.classify(np.ascontiguousarray(crop[..., ::-1]), [ROI], model="colours", top_k=0,
                          channel_order="BGR").results[0]
    generic = served.classify(crop, [ROI], model="colours", top_k=0, channel_order="BANDS").results[0]
    tensor = as_tensor(rgb, 3)
    np.testing.assert_array_equal(as_tensor(bgr, 3), tensor)
    np.testing.assert_array_equal(as_tensor(generic, 3), tensor)
    np.testing.assert_array_equal(tensor, kernel_tensor(crop, [2, 0, 1], 255.0))  # band 2 = blue


def _raw(image: np.ndarray, **fields) -> pb.ClassifyObjectRequest:
    request = build_request(image, [ROI], model="bands")
    for key, value in fields.items():
        setattr(request.image.raw, key, value)
    return request


@pytest.mark.parametrize("change, field", [
    (dict(bands=0), "image.raw.bands"),
    (dict(bands=17), "image.raw.bands"),
    (dict(sample_type=0), "image.raw.sample_type"),
])
def test_bad_generic_images_name_the_field(served, change, field):
    request = _raw(np.zeros((20, 24, 6), np.uint16), **change)
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ClassifyObject(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()


def test_bad_polygons_and_missing_bands_name_the_field(served):
    request = build_request(np.zeros((20, 24, 6), np.uint16), [ROI], model="bands")
    request.rois[0].polygon.xy.extend([1.0, 2.0, 3.0, 4.0])  # 2 vertices
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ClassifyObject(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rois[0].polygon" in err.value.details()
    with pytest.raises(ClassifierError) as err:  # the model reads band 4 of a 3-band image
        served.classify(np.zeros((20, 24, 3), np.uint16), [ROI], model="bands")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "bands out of range: [4]" in str(err.value)
