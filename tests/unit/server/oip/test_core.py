"""InferenceProtocol on a real Engine and ModelManager with a real tiny ONNX model:
the tensors reach the engine as v1's requests do, outputs and errors are the protocol's."""
from __future__ import annotations

import asyncio

import numpy as np
import onnxruntime as ort
import pytest

from roiclass.server import errors
from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.manager import ModelManager
from roiclass.server.oip.core import InferenceProtocol, InferRequest, RequestedOutput
from roiclass.server.oip.tensors import Tensor
from roiclass.v1 import classifier_pb2 as pb
from tests.unit.engine.conftest import SIZE, make_onnx, make_spec

rng = np.random.default_rng(3)
IMAGE = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
ROIS = np.array([[2, 3, 20, 15, 10], [10, 5, 30, 30, -25], [0, 0, 50, 40, 0]], np.float32)
ALIGN = np.array([[1, 2, 5, 0.5], [0, 0, 0, 0], [3, 1, -10, 1]], np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = make_onnx(tmp_path_factory.mktemp("oip") / "tiny.onnx", classes=5)
    engine = Engine(EngineConfig(devices="cpu", instances_per_device=1, cpu_threads=1))
    manager = ModelManager(engine, repositories=[], model_paths=[], default_model=None,
                           extra_specs=[make_spec(path, classes=5)])
    manager.load_all()
    yield InferenceProtocol(engine, manager, RequestLimits(max_rois=8)), engine, manager, path
    engine.close(grace_s=1.0)


def infer(oip, *inputs, outputs=(), model="tiny"):
    return asyncio.run(oip.infer(InferRequest(model, inputs=list(inputs), outputs=list(outputs))))


def direct(engine, image, rois):
    model = engine.resolve("tiny")
    return engine.classify(model, image, "RGB8", rois).result(30).probabilities


def test_image_and_rois_reach_the_engine_as_v1_builds_them(setup):
    oip, engine, _, _ = setup
    out = infer(oip, Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS), Tensor.of("ALIGNMENT", ALIGN))
    # v1's domain layer, for the same ROIs and alignments, gives the reference rows.
    msg = pb.ClassifyObjectRequest(image=pb.Image(raw=pb.RawImage(
        width=50, height=40, pixel_format=pb.RGB8, pixels=IMAGE.tobytes())))
    for (x, y, w, h, a), (ax, ay, aa, s) in zip(ROIS.tolist(), ALIGN.tolist()):
        roi = msg.rois.add()
        roi.rect.origin.x, roi.rect.origin.y, roi.rect.width, roi.rect.height, roi.rect.angle = x, y, w, h, a
        roi.alignment.origin.x, roi.alignment.origin.y, roi.alignment.angle, roi.alignment.scale = ax, ay, aa, s
    v1 = ClassifyRequest.from_proto(msg, RequestLimits())
    (probs,) = out.outputs
    assert probs.name == "PROBABILITIES" and probs.datatype == "FP32" and probs.shape == (3, 5)
    np.testing.assert_array_equal(probs.data, direct(engine, v1.image.array, v1.rois_array))
    assert out.model == "tiny" and out.version == "1"


def test_without_rois_the_whole_image_and_a_batch_is_image_major(setup):
    oip, engine, _, _ = setup
    second = IMAGE[::-1].copy()
    out = infer(oip, Tensor.of("IMAGE", np.stack([IMAGE, second])))
    whole = np.array([[0, 0, 50, 40, 0]], np.float64)
    expected = np.concatenate([direct(engine, IMAGE, whole), direct(engine, second, whole)])
    np.testing.assert_array_equal(out.outputs[0].data, expected)


def test_raw_tensor_mode_equals_onnx_runtime(setup):
    oip, _, _, path = setup
    x = rng.normal(size=(3, 3, SIZE, SIZE)).astype(np.float32)
    out = infer(oip, Tensor.of("pixels", x))
    logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.outputs[0].data, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_classification_extension_is_top_k_score_index_label(setup):
    oip, _, _, _ = setup
    plain = infer(oip, Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS)).outputs[0].data
    out = infer(oip, Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS),
                outputs=[RequestedOutput("PROBABILITIES", {"classification": 3})]).outputs[0]
    assert out.datatype == "BYTES" and out.shape == (3, 3)
    for row, strings in zip(plain, out.data):
        order = np.argsort(-row, kind="stable")[:3]
        assert [s.decode() for s in strings] == [f"{row[i]:f}:{i}:c{i}" for i in order]


@pytest.mark.parametrize("inputs,outputs,match", [
    ([Tensor.of("IMAGE", IMAGE.astype(np.float32))], [], "IMAGE: datatype FP32: allowed UINT8"),
    ([Tensor.of("IMAGE", IMAGE[0])], [], r"IMAGE: shape \[50, 3\]: allowed \[H, W, C\]"),
    ([Tensor.of("IMAGE", IMAGE[..., :2])], [], "IMAGE: 2 channels of UINT8: allowed"),
    ([Tensor.of("ROIS", ROIS)], [], "inputs: send exactly one of IMAGE"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("IMAGE_ENCODED", np.array([b"x"], object))], [], "exactly one"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS[:, :4])], [], r"ROIS: shape \[3, 4\]: allowed \[N, 5\]"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", np.array([[0, 0, 0, 5, 0]], np.float32))], [],
     r"ROIS\[0\]: width 0.0 must be > 0"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", np.array([[90, 0, 5, 5, 0]], np.float32))], [],
     r"ROIS\[0\]: lies entirely outside the 50x40 image"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", np.array([[0, np.nan, 5, 5, 0]], np.float32))], [],
     r"ROIS\[0\]: y nan is not a finite number"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", np.ones((9, 5), np.float32))], [], "at most 8 are allowed"),
    ([Tensor.of("IMAGE", IMAGE), Tensor.of("ALIGNMENT", ALIGN)], [], "ALIGNMENT: needs ROIS"),
    ([Tensor.of("IMAGE_ENCODED", np.array([b"not a png"], object))], [], r"IMAGE_ENCODED\[0\]: cannot be decoded"),
    ([Tensor.of("MASK", IMAGE)], [], "input 'MASK' is not an input of model 'tiny'; allowed: IMAGE, IMAGE_ENCODED"),
    ([Tensor.of("pixels", np.zeros((1, 3, SIZE, SIZE), np.float64))], [],
     "pixels: datatype FP64: the model takes FP32"),
    ([Tensor.of("pixels", np.zeros((1, 3, 4, 4), np.float32))], [], r"pixels: shape \[1, 3, 4, 4\]: allowed \[N, 3,"),
    ([Tensor.of("pixels", np.zeros((1, 3, SIZE, SIZE), np.float32)), Tensor.of("IMAGE", IMAGE)], [], "goes alone"),
    ([Tensor.of("IMAGE", IMAGE)], [RequestedOutput("LOGITS")],
     "output 'LOGITS' is not produced; allowed: PROBABILITIES"),
    ([Tensor.of("IMAGE", IMAGE)], [RequestedOutput("PROBABILITIES", {"classification": 0})],
     "PROBABILITIES.parameters.classification: 0 must be an integer >= 1"),
])
def test_bad_requests_are_invalid_argument_naming_the_tensor(setup, inputs, outputs, match):
    oip, _, _, _ = setup
    with pytest.raises(errors.InvalidArgument, match=match):
        infer(oip, *inputs, outputs=outputs)


def test_unknown_model_is_not_found(setup):
    oip, _, _, _ = setup
    with pytest.raises(errors.NotFound, match="model 'nope' not found"):
        infer(oip, Tensor.of("IMAGE", IMAGE), model="nope")
    with pytest.raises(errors.NotFound, match="available models: tiny"):
        oip.model_ready("nope")


def test_metadata_and_config_describe_the_model(setup):
    oip, _, _, _ = setup
    meta = oip.model_metadata("tiny")
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}
    assert inputs["pixels"] == ("FP32", [-1, 3, SIZE, SIZE]) and inputs["ROIS"] == ("FP32", [-1, -1, 5])
    assert meta["outputs"] == [{"name": "PROBABILITIES", "datatype": "FP32", "shape": [-1, 5]}]
    config = oip.model_config("tiny")
    assert config["max_batch_size"] >= 1 and config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert {i["name"] for i in config["input"]} == set(inputs) and all(i["optional"] for i in config["input"])


def test_statistics_count_the_requests(setup):
    oip, engine, _, _ = setup
    before = oip.statistics("tiny")[0]
    infer(oip, Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS))
    with pytest.raises(errors.InvalidArgument):
        infer(oip, Tensor.of("IMAGE", IMAGE[0]))
    after = oip.statistics("tiny")[0]
    assert after["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert after["inference_stats"]["fail"]["count"] == before["inference_stats"]["fail"]["count"] + 1
    assert after["inference_count"] == engine.counters("tiny", "1")["items"] >= before["inference_count"] + 3
    assert after["inference_stats"]["compute_infer"]["ns"] > before["inference_stats"]["compute_infer"]["ns"]


def test_unload_holds_the_model_until_load(setup):
    oip, _, manager, _ = setup
    assert oip.model_ready("tiny") and oip.ready()
    asyncio.run(oip.unload("tiny"))
    try:
        assert not oip.model_ready("tiny")
        assert oip.ready()  # an unloaded model does not make the server unready (as Triton)
        assert oip.repository_index() == [{"name": "tiny", "version": "1", "state": "UNAVAILABLE",
                                           "reason": "unloaded"}]
        manager.reload()  # a rescan (poll, ReloadModels) leaves it unloaded
        assert not oip.model_ready("tiny")
        with pytest.raises(errors.Unavailable):
            infer(oip, Tensor.of("IMAGE", IMAGE))
    finally:
        asyncio.run(oip.load("tiny"))
    assert oip.model_ready("tiny")
    assert oip.repository_index(ready_only=True)[0]["state"] == "READY"
    with pytest.raises(errors.NotFound, match="'nope' is in no model source"):
        asyncio.run(oip.load("nope"))
    with pytest.raises(errors.NotFound, match="'nope' not found"):
        asyncio.run(oip.unload("nope"))


def test_rois_per_image_of_a_batch(setup):
    oip, engine, _, _ = setup
    second = IMAGE[::-1].copy()
    per_image = np.stack([ROIS[:2], ROIS[1:]])  # [2, 2, 5]
    out = infer(oip, Tensor.of("IMAGE", np.stack([IMAGE, second])), Tensor.of("ROIS", per_image)).outputs[0]
    assert out.shape == (2, 2, 5)
    np.testing.assert_array_equal(out.data[0], direct(engine, IMAGE, ROIS[:2].astype(np.float64)))
    np.testing.assert_array_equal(out.data[1], direct(engine, second, ROIS[1:].astype(np.float64)))
    # One image with a batch dimension of 1 on its ROIs (perf_analyzer's batched JSON shapes).
    one = infer(oip, Tensor.of("IMAGE", IMAGE[np.newaxis]), Tensor.of("ROIS", ROIS[np.newaxis])).outputs[0]
    assert one.shape == (1, 3, 5)
    np.testing.assert_array_equal(one.data[0], direct(engine, IMAGE, ROIS.astype(np.float64)))
    with pytest.raises(errors.InvalidArgument, match=r"ROIS: shape \[3, 3, 5\]: allowed \[N, 5\] or, for 2 image"):
        infer(oip, Tensor.of("IMAGE", np.stack([IMAGE, second])), Tensor.of("ROIS", np.stack([ROIS] * 3)))


def test_the_tensors_view_lists_only_the_model_input(setup):
    oip, _, _, path = setup
    meta = oip.model_metadata("tiny.tensors")
    assert meta["name"] == "tiny.tensors"
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, SIZE, SIZE]}]
    config = oip.model_config("tiny.tensors")
    assert [(i["name"], i["optional"]) for i in config["input"]] == [("pixels", False)]
    assert oip.model_ready("tiny.tensors")
    assert [(s["name"], s["version"]) for s in oip.statistics("tiny.tensors")] == [("tiny.tensors", "1")]
    x = rng.normal(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    out = infer(oip, Tensor.of("pixels", x), model="tiny.tensors")
    np.testing.assert_array_equal(out.outputs[0].data, infer(oip, Tensor.of("pixels", x)).outputs[0].data)
    assert out.model == "tiny.tensors"
    with pytest.raises(errors.InvalidArgument,
                       match="input 'IMAGE' is not an input of model 'tiny.tensors'; allowed: pixels$"):
        infer(oip, Tensor.of("IMAGE", IMAGE), model="tiny.tensors")


def test_each_inference_is_one_observed_request_of_the_model(setup):
    _, engine, manager, _ = setup
    seen = []

    class Observer:  # what RequestObserver.observe receives (the metrics' labels)
        def observe(self, model, version, code, seconds):
            assert seconds >= 0
            seen.append((model, version, code))

    oip = InferenceProtocol(engine, manager, RequestLimits(), observer=Observer())
    infer(oip, Tensor.of("IMAGE", IMAGE))
    infer(oip, Tensor.of("pixels", np.zeros((1, 3, SIZE, SIZE), np.float32)), model="tiny.tensors")
    with pytest.raises(errors.InvalidArgument):
        infer(oip, Tensor.of("IMAGE", IMAGE[0]))
    assert seen == [("tiny", "1", "OK"), ("tiny", "1", "OK"), ("tiny", "", "INVALID_ARGUMENT")]


def test_the_pixel_format_parameter_names_the_channel_order(setup):
    oip, _, _, _ = setup
    rgb = infer(oip, Tensor.of("IMAGE", IMAGE), Tensor.of("ROIS", ROIS)).outputs[0].data
    bgr = Tensor.of("IMAGE", np.ascontiguousarray(IMAGE[..., ::-1]), {"pixel_format": "BGR8"})
    np.testing.assert_array_equal(infer(oip, bgr, Tensor.of("ROIS", ROIS)).outputs[0].data, rgb)
    with pytest.raises(errors.InvalidArgument, match="IMAGE.parameters.pixel_format: 'CMYK' is not a pixel format"):
        infer(oip, Tensor.of("IMAGE", IMAGE, {"pixel_format": "CMYK"}))
    with pytest.raises(errors.InvalidArgument, match="pixel format RGBA8 needs 4 channel"):
        infer(oip, Tensor.of("IMAGE", IMAGE, {"pixel_format": "RGBA8"}))
    for yuv in ("I420", "NV12"):  # planes, not an (H, W, C) tensor: named, not INTERNAL
        with pytest.raises(errors.InvalidArgument, match=f"'{yuv}' is not a pixel format of an .H, W, C. tensor; "
                                                         "allowed: GRAY8, RGB8"):
            infer(oip, Tensor.of("IMAGE", IMAGE, {"pixel_format": yuv}))
