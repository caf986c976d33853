"""The ObjectClassifier servicer without a server: its coroutines called with a
small fake context, on a real Engine with real tiny ONNX models."""
from __future__ import annotations

import asyncio
from concurrent.futures import Future

import numpy as np
import pytest

from roiclass.server import errors
from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.heatmap.service import HeatmapService
from roiclass.server.manager import ModelManager
from roiclass.server.models.repository import load_model_path
from roiclass.server.pipeline.stage import engine_result
from roiclass.server.servicer import ObjectClassifierServicer
from roiclass.v1 import classifier_pb2 as pb
from tests.unit.engine.conftest import make_onnx, make_spec
from tests.unit.heatmap.quadrant_model import make_quadrant_folder

rng = np.random.default_rng(5)
IMAGE = rng.integers(170, 256, (60, 80, 3), dtype=np.uint8)  # bright: the quadrant class wins
RECTS = [(10.0, 8.0, 30.0, 20.0, 15.0), (40.0, 30.0, 25.0, 25.0, -40.0), (5.0, 5.0, 70.0, 50.0, 0.0)]


class FakeContext:
    """What the servicer reads of a grpc.aio context."""

    def __init__(self, remaining: float | None = None):
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining

    def invocation_metadata(self):  # the caller identity (roiclass.server.callers)
        return ()

    def auth_context(self):
        return {}

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort_with_status(self, status):
        raise AssertionError("the servicer raises; the error mapper aborts")


class FakeObserver:
    def __init__(self):
        self.seen = []

    def observe(self, model, version, code, seconds):
        assert seconds >= 0
        self.seen.append((model, version, code))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("servicer")
    tiny = make_spec(make_onnx(root / "tiny.onnx", classes=4), classes=4, version="3")
    (quadrant,) = load_model_path(make_quadrant_folder(root / "quadrant", max_batch=8))
    engine = Engine(EngineConfig(devices="cpu", cpu_threads=1))
    manager = ModelManager(engine, repositories=[], model_paths=[root / "gone.onnx"],
                           extra_specs=[tiny, quadrant], default_model="tiny")
    manager.load_all()
    yield engine, manager
    engine.close(grace_s=1.0)


def _servicer(served, **kw) -> ObjectClassifierServicer:
    engine, manager = served
    kw.setdefault("heatmaps", HeatmapService(engine))
    return ObjectClassifierServicer(engine, manager, RequestLimits(max_rois=8), **kw)


def _request(model: str = "", rects=RECTS, request_id: str = "r1", **kw) -> pb.ClassifyObjectRequest:
    return pb.ClassifyObjectRequest(
        model=model, request_id=request_id,
        image=pb.Image(raw=pb.RawImage(width=80, height=60, pixel_format=pb.RGB8, pixels=IMAGE.tobytes())),
        rois=[pb.Roi(id=f"roi{i}", rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), width=w, height=h, angle=a))
              for i, (x, y, w, h, a) in enumerate(rects)],
        **kw)


def _call(coro):
    return asyncio.run(coro)




def test_classify_answers_every_roi_with_its_sorted_classes(served):
    engine, manager = served
    resp = _call(_servicer(served).ClassifyObject(_request(), FakeContext()))
    assert (resp.model, resp.model_version, resp.request_id) == ("tiny", "3", "r1")
    assert [r.roi_id for r in resp.results] == ["roi0", "roi1", "roi2"]
    model = manager.resolve("tiny")
    req = ClassifyRequest.from_proto(_request(), RequestLimits())  # the ROI rows the engine takes
    want = engine.classify(model, req.image.array, req.image.pixel_format, req.rois_array).result(30).probabilities
    for result, probs, (x, y, w, h, a) in zip(resp.results, want, RECTS, strict=True):
        order = np.argsort(-probs, kind="stable")
        assert [c.class_index for c in result.confidences] == order.tolist()
        assert [c.class_name for c in result.confidences] == [f"c{i}" for i in order]
        np.testing.assert_allclose([c.confidence for c in result.confidences], probs[order], rtol=1e-6)
        assert (result.class_index, result.class_name) == (order[0], f"c{order[0]}")
        assert result.score == pytest.approx(float(probs[order[0]]), rel=1e-6)
        r = result.aligned_roi
        assert (r.origin.x, r.origin.y, r.width, r.height, r.angle) == (x, y, w, h, a)
        assert not result.HasField("heatmap")
    assert resp.timing.total_us >= resp.timing.inference_us > 0


def test_top_k_and_min_confidence_cut_the_classes_but_keep_the_best(served):
    resp = _call(_servicer(served).ClassifyObject(_request(top_k=2), FakeContext()))
    assert all(len(r.confidences) == 2 for r in resp.results)
    resp = _call(_servicer(served).ClassifyObject(_request(min_confidence=1.0), FakeContext()))
    assert all(len(r.confidences) == 0 and r.class_name for r in resp.results)


def test_no_rois_means_the_whole_image(served):
    resp = _call(_servicer(served).ClassifyObject(_request(rects=[]), FakeContext()))
    (result,) = resp.results
    r = result.aligned_roi
    assert (r.origin.x, r.origin.y, r.width, r.height, r.angle) == (0, 0, 80, 60, 0)


def test_a_heatmap_request_runs_the_kernel_once_per_roi(served, monkeypatch):
    engine, manager = served
    model = manager.resolve("quadrant")
    calls = {"classify": 0, "preprocess": 0}
    real_preprocess = engine.preprocess

    def preprocess(*args):
        calls["preprocess"] += 1
        return real_preprocess(*args)

    def classify(*args, **kw):
        calls["classify"] += 1
        raise AssertionError("the ROIs were preprocessed already")

    plain = _call(_servicer(served).ClassifyObject(_request("quadrant"), FakeContext()))
    before = engine.counters(model.name, model.version)
    monkeypatch.setattr(engine, "preprocess", preprocess)
    monkeypatch.setattr(engine, "classify", classify)
    options = pb.HeatmapOptions(patch_size=8, stride=8)  # 4 x 4 occlusions of the 32 x 32 input
    resp = _call(_servicer(served).ClassifyObject(
        _request("quadrant", create_relevance_heatmap=True, heatmap_options=options), FakeContext()))
    after = engine.counters(model.name, model.version)
    assert calls == {"classify": 0, "preprocess": 1}
    assert after["items"] - before["items"] == len(RECTS) * (1 + 16)
    for a, b in zip(plain.results, resp.results, strict=True):
        assert b.HasField("heatmap") and b.heatmap.scale > 0
        assert (a.class_index, a.score) == (b.class_index, pytest.approx(b.score, rel=1e-6))
    assert resp.timing.preprocess_us > 0


def test_heatmap_options_are_checked_before_any_work(served, monkeypatch):
    engine, _ = served
    monkeypatch.setattr(engine, "preprocess", lambda *a: pytest.fail("preprocessed"))
    request = _request("quadrant", create_relevance_heatmap=True, heatmap_options=pb.HeatmapOptions(stride=0))
    with pytest.raises(errors.InvalidArgument, match="heatmap_options.stride"):
        _call(_servicer(served).ClassifyObject(request, FakeContext()))


def test_heatmaps_without_a_heatmap_service_are_unimplemented(served):
    request = _request("quadrant", create_relevance_heatmap=True)
    with pytest.raises(errors.Unimplemented, match="create_relevance_heatmap is not implemented"):
        _call(_servicer(served, heatmaps=None).ClassifyObject(request, FakeContext()))


def test_wrong_fields_unknown_and_failed_models_raise_their_errors(served):
    servicer = _servicer(served)
    with pytest.raises(errors.InvalidArgument, match=r"rois: has 9 ROIs; at most 8"):
        _call(servicer.ClassifyObject(_request(rects=RECTS * 3), FakeContext()))
    with pytest.raises(errors.NotFound, match="'nope' not found"):
        _call(servicer.ClassifyObject(_request("nope"), FakeContext()))
    with pytest.raises(errors.Unavailable, match="'gone' version .* failed to load"):
        _call(servicer.ClassifyObject(_request("gone"), FakeContext()))


def test_a_spent_deadline_fails_the_request(served):
    with pytest.raises(errors.DeadlineExceeded):
        _call(_servicer(served).ClassifyObject(_request(), FakeContext(remaining=-1.0)))


async def _frames(requests):
    for r in requests:
        yield r


def _stream(servicer, requests, context=None) -> list[pb.ClassifyObjectStreamResponse]:
    async def collect():
        return [r async for r in servicer.ClassifyObjectStream(_frames(requests), context or FakeContext())]

    return _call(collect())


@pytest.mark.parametrize("window", [1, 64])
def test_stream_frames_answer_in_order_and_a_bad_frame_does_not_end_it(served, window):
    observer = FakeObserver()
    servicer = _servicer(served, stream_window=window, observer=observer)
    requests = [_request(request_id="a"), _request("nope", request_id="b"),
                _request(rects=[(500.0, 500.0, 5.0, 5.0, 0.0)], request_id="c"), _request(request_id="d")]
    out = _stream(servicer, requests)
    assert [r.request_id for r in out] == ["a", "b", "c", "d"]
    assert [r.WhichOneof("outcome") for r in out] == ["response", "error", "error", "response"]
    assert out[1].error.code == errors.NotFound.code.value[0] and "'nope' not found" in out[1].error.message
    assert out[2].error.code == errors.InvalidArgument.code.value[0]
    assert "rois[0]: lies entirely outside the 80x60 image" in out[2].error.message
    assert out[3].response.model_version == "3" and len(out[3].response.results) == 3
    # One observation per frame, as each finishes (frames are pipelined).
    assert sorted(observer.seen) == [("", "", "INVALID_ARGUMENT"), ("", "3", "OK"), ("", "3", "OK"),
                                     ("nope", "", "NOT_FOUND")]


def test_a_frame_failing_unexpectedly_is_internal(served, monkeypatch):
    engine, _ = served
    observer = FakeObserver()
    monkeypatch.setattr(engine, "classify", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    (out,) = _stream(_servicer(served, observer=observer), [_request()])
    assert out.error.code == 13 and out.error.message == "internal error: RuntimeError: bug"
    assert observer.seen == [("", "", "INTERNAL")]


def test_a_failing_request_stream_ends_the_stream_with_its_error(served):
    async def broken():
        yield _request()
        raise errors.Cancelled("client went away")

    async def collect():
        return [r async for r in _servicer(served).ClassifyObjectStream(broken(), FakeContext())]

    with pytest.raises(errors.Cancelled):
        _call(collect())


def test_a_cancelled_call_cancels_its_engine_job():
    seen = {}

    def submit(is_cancelled):
        seen["is_cancelled"], seen["future"] = is_cancelled, Future()
        return seen["future"]

    async def main():
        task = asyncio.ensure_future(engine_result(submit))
        await asyncio.sleep(0.01)
        assert not seen["is_cancelled"]()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen["is_cancelled"]() and seen["future"].cancelled()


def test_models_are_listed_and_got_by_name(served):
    servicer = _servicer(served)
    listing = _call(servicer.ListModels(pb.ListModelsRequest(), FakeContext()))
    assert listing.default_model == "tiny"
    assert [m.name for m in listing.models] == ["gone", "quadrant", "tiny"]
    tiny = _call(servicer.GetModel(pb.GetModelRequest(name="tiny"), FakeContext()))
    assert list(tiny.classes) == ["c0", "c1", "c2", "c3"] and tiny.input_width == 16
    assert [(v.version, v.state) for v in tiny.versions] == [("3", pb.ModelVersionInfo.READY)]
    with pytest.raises(errors.NotFound, match="model 'tiny' has no version '9'; available versions: 3"):
        _call(servicer.GetModel(pb.GetModelRequest(name="tiny", version="9"), FakeContext()))
    reloaded = _call(servicer.ReloadModels(pb.ReloadModelsRequest(), FakeContext()))
    assert reloaded == listing
