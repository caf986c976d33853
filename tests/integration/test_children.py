"""Nested classifiers ([[children]]) through a real server on loopback, port 0,
with the tiny models of tests/child_models.py and images drawn with NumPy.

paint -> shade (when red, score >= 0.5) -> tint (when bright); paint -> edge
(when green or class 2, score >= 0.9, roi expand:2); lazy -> slow (slowed) ->
after. Expected trees come from a NumPy reference of the models on the crops.
"""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.server.models.repository import load_repository
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc
from tests import child_models
from tests.integration.requests import raw_image, request, roi

SIDE = child_models.SIDE
# One square per branch: dark red (shade: dark), bright reds (shade: bright ->
# tint greenish / bluish), green and blue (edge on the grown ROI: white around
# it), and an unsure green-cyan (score < 0.9: no child at all).
COLOURS = [(255, 0, 0), (255, 200, 120), (255, 120, 200), (0, 200, 0), (0, 0, 255), (0, 200, 190)]
BROKEN = {  # name -> its [[children]]: FAILED at load
    "loopa": '[[children]]\nmodel = "loopb"\n',
    "loopb": '[[children]]\nmodel = "loopa"\n',
    "orphan": '[[children]]\nmodel = "nowhere"\n',
    "badwhen": '[[children]]\nmodel = "tint"\nwhen = ["purple"]\n',
    "holder": '[[children]]\nmodel = "spare"\n',  # spare is deleted by a test
}
BOTH = '[[children]]\nmodel = "slow"\n\n[[children]]\nmodel = "shade"\n'  # a slow and a fast sibling


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    repo = child_models.write_repository(tmp_path_factory.mktemp("children"), slow_ms=500)
    for name, children in BROKEN.items():
        child_models.write_model(repo, name, like="paint", children=children)
    child_models.write_model(repo, "spare", like="tint")
    child_models.write_model(repo, "both", like="paint", children=BOTH)
    config = ServerConfig(port=0, metrics_port=None, repositories=(repo,),
                          engine=EngineConfig(fault_injection=True, cpu_batch_cap=8, instances_per_device=1))
    server = BackgroundServer(config).start()
    server.repo = repo
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(srv):
    with grpc.insecure_channel(srv.address) as ch:
        yield classifier_pb2_grpc.ObjectClassifierStub(ch)


def _image() -> np.ndarray:
    img = np.full((48, 40 * len(COLOURS), 3), 255, np.uint8)
    for i, colour in enumerate(COLOURS):
        img[16:16 + SIDE, 12 + 40 * i:12 + 40 * i + SIDE] = colour
    return img


IMAGE = _image()


def _rois() -> list[pb.Roi]:
    return [roi(12 + 40 * i, 16, SIDE, SIDE, roi_id=f"sq{i}") for i in range(len(COLOURS))]


def _reference(specs: dict, name: str, x: int, y: int, w: int, h: int, depth: int = 1) -> dict:
    """The tree the server should give for model `name` on the axis-aligned ROI."""
    spec = specs[name]
    cls, score = child_models.expected(name, IMAGE[y:y + h, x:x + w])
    out = {"class": cls, "children": []}
    for child in spec.children if depth <= 7 else ():
        if score < child.min_confidence or (child.when and not any(
                ref == (spec.classes.index(cls) if isinstance(ref, int) else cls) for ref in child.when)):
            continue
        f = child.expand
        cx, cy, cw, ch = x - (f - 1) * w / 2, y - (f - 1) * h / 2, w * f, h * f
        sub = _reference(specs, child.model, int(cx), int(cy), int(cw), int(ch), depth + 1)
        out["children"].append((child.model, sub))
    return out


def _tree(result: pb.RoiResult) -> dict:
    return {"class": result.class_name, "children": [
        (c.model, _tree(c.result) if c.HasField("result") else f"error {c.error.code}")
        for c in result.children]}


def test_each_branch_gets_exactly_its_subtree(srv, stub):
    specs = {s.name: s for s in load_repository(srv.repo) if hasattr(s, "children")}
    resp = stub.ClassifyObject(request(raw_image(IMAGE), _rois(), model="paint"), timeout=30)
    got = [_tree(r) for r in resp.results]
    want = [_reference(specs, "paint", 12 + 40 * i, 16, SIDE, SIDE) for i in range(len(COLOURS))]
    assert got == want
    # Every branch is taken by some square (the reference is not trivially empty).
    assert [[(m, t["class"], [g["class"] for _, g in t["children"]]) for m, t in r["children"]] for r in got] == [
        [("shade", "dark", [])], [("shade", "bright", ["greenish"])], [("shade", "bright", ["bluish"])],
        [("edge", "light_around", [])], [("edge", "light_around", [])], []]
    assert resp.results[5].score < 0.9 and resp.results[5].class_name == "green"
    edge = resp.results[3].children[0]
    assert (edge.model, edge.model_version) == ("edge", "1")
    box = edge.result.aligned_roi  # the child's own ROI: grown 2x about the centre
    assert (box.origin.x, box.origin.y, box.width, box.height) == (12 + 40 * 3 - 8, 8, 32, 32)
    assert edge.result.roi_id == "sq3"


def test_children_off_and_depth_limit(stub):
    base = request(raw_image(IMAGE), _rois()[:3], model="paint")
    off = stub.ClassifyObject(pb.ClassifyObjectRequest(**_fields(base), children=False), timeout=30)
    assert all(not r.children for r in off.results)
    one = stub.ClassifyObject(pb.ClassifyObjectRequest(**_fields(base), max_child_depth=1), timeout=30)
    assert [len(r.children) for r in one.results] == [1, 1, 1]
    assert all(not r.children[0].result.children for r in one.results)


def _fields(req: pb.ClassifyObjectRequest) -> dict:
    return {"image": req.image, "rois": list(req.rois), "model": req.model}


def test_a_failing_child_fails_only_its_subtree(srv, stub):
    engine = srv.app.engine
    x2 = 12 + 40 * 2.0
    engine.inject_fault("shade", "1", "preprocess", match=lambda row: row[0] == x2)
    try:
        resp = stub.ClassifyObject(request(raw_image(IMAGE), _rois(), model="paint"), timeout=30)
    finally:
        engine.inject_fault("shade", "1", "preprocess", match=None)
    for r in resp.results[:3]:  # the poisoned ROI fails shade's whole job: these three ROIs
        (child,) = r.children
        assert child.model == "shade" and child.WhichOneof("outcome") == "error"
        assert child.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "poisoned" in child.error.message
    assert [r.class_name for r in resp.results] == ["red", "red", "red", "green", "blue", "green"]
    assert [r.children[0].result.class_name for r in resp.results[3:5]] == ["light_around"] * 2


def test_cycles_unknown_children_and_bad_when_are_failed_at_load(stub):
    infos = {m.name: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models}
    reasons = {name: [(v.state, v.reason) for v in infos[name].versions] for name in
               ("loopa", "loopb", "orphan", "badwhen")}
    failed = pb.ModelVersionInfo.FAILED
    assert reasons == {
        "loopa": [(failed, "children[0]: cycle loopa -> loopb -> loopa")],
        "loopb": [(failed, "children[0]: cycle loopb -> loopa -> loopb")],
        "orphan": [(failed, "children[0]: unknown model 'nowhere'; models: " + ", ".join(sorted(infos)))],
        "badwhen": [(failed, "children[0]: when: 'purple' is not a class of badwhen; classes: red, green, blue")],
    }
    assert infos["paint"].versions[0].state == pb.ModelVersionInfo.READY
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyObject(request(raw_image(IMAGE), _rois()[:1], model="loopa"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cycle loopa -> loopb -> loopa" in err.value.details()


def test_get_model_shows_the_children(stub):
    info = stub.GetModel(pb.GetModelRequest(name="paint"), timeout=10)
    assert [(c.model, c.version, list(c.when), round(c.min_confidence, 6), c.roi) for c in info.children] == [
        ("shade", "", ["red"], 0.5, "same"), ("edge", "", ["green", "blue"], 0.9, "expand:2")]
    assert not info.HasField("detector") and info.default_tta == "" and info.default_detector == ""


def _occupy_slow(srv, stub, rois: int = 9):
    """A direct call to slow: batches of 8, the last of the rest (~0.5 s each here,
    whatever their size). Returns (its future, slow's counters before) once the
    first batch ran (the next one is running)."""
    engine = srv.app.engine
    before = engine.counters("slow", "1")
    busy = stub.ClassifyObject.future(request(raw_image(IMAGE), _rois()[:1] * rois, model="slow",
                                              children=False), timeout=60)
    while engine.counters("slow", "1")["items"] < before["items"] + 8:
        time.sleep(0.002)
    return busy, before


def _lazy(**fields) -> pb.ClassifyObjectRequest:
    return request(raw_image(IMAGE), _rois()[:1], model="lazy", **fields)


def test_children_share_batches_with_other_traffic(srv, stub):
    busy, before = _occupy_slow(srv, stub)
    # Both queue behind slow's running batch: one batch takes the child's item and the call's two.
    tree = stub.ClassifyObject.future(_lazy(), timeout=60)
    direct = stub.ClassifyObject.future(request(raw_image(IMAGE), _rois()[:2], model="slow", children=False),
                                        timeout=60)
    assert len(busy.result().results) == 9 and len(direct.result().results) == 2
    (child,) = tree.result().results[0].children
    assert child.model == "slow" and child.result.children[0].model == "after"
    after = srv.app.engine.counters("slow", "1")
    assert after["items"] - before["items"] == 9 + 1 + 2
    assert after["batches"] - before["batches"] == 3  # 8, 1, then the child's item with the direct two


def _wait_counts(engine, name: str, key: str, at_least: int, timeout: float = 10.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        counts = engine.counters(name, "1")
        if counts[key] >= at_least or time.monotonic() > end:
            return counts
        time.sleep(0.02)


def _dropped(counts: dict) -> int:
    return counts["dropped_deadline"] + counts["dropped_cancelled"]


def test_deadline_drops_pending_children(srv, stub):
    engine = srv.app.engine
    after_before = engine.counters("after", "1")["items"]
    busy, before = _occupy_slow(srv, stub, rois=25)  # 3 more batches: longer than the deadline on any CPU
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyObject(_lazy(), timeout=0.3)  # lazy answers at once, its child queues behind busy
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    busy.result()
    counts = _wait_counts(engine, "slow", "dropped_deadline", before["dropped_deadline"] + 1, 2.0)
    assert _dropped(counts) - _dropped(before) == 1
    assert counts["items"] - before["items"] == 25  # the child never ran
    assert engine.counters("after", "1")["items"] == after_before  # nor its child


def test_cancelled_call_drops_pending_children(srv, stub):
    engine = srv.app.engine
    lazy_before = engine.counters("lazy", "1")["items"]
    after_before = engine.counters("after", "1")["items"]
    busy, before = _occupy_slow(srv, stub, rois=25)
    call = stub.ClassifyObject.future(_lazy(), timeout=60)
    _wait_counts(engine, "lazy", "items", lazy_before + 1)  # the parent's result is known
    time.sleep(0.05)  # its child is queued behind busy
    call.cancel()
    busy.result()
    counts = _wait_counts(engine, "slow", "dropped_cancelled", before["dropped_cancelled"] + 1, 2.0)
    assert _dropped(counts) - _dropped(before) == 1
    assert counts["items"] - before["items"] == 25
    assert engine.counters("after", "1")["items"] == after_before


def test_reloading_a_child_does_not_fail_in_flight_trees(srv, stub):
    busy, _ = _occupy_slow(srv, stub)
    calls = [stub.ClassifyObject.future(_lazy(), timeout=60) for _ in range(2)]
    # A new version of the grandchild while the trees wait for slow.
    child_models.make_model(srv.repo / "after" / "2" / "model.onnx", "after")
    stub.ReloadModels(pb.ReloadModelsRequest(), timeout=60)
    busy.result()
    for call in calls:
        (child,) = call.result().results[0].children
        (grandchild,) = child.result.children
        assert grandchild.WhichOneof("outcome") == "result" and grandchild.model_version in ("1", "2")
    later = stub.ClassifyObject(_lazy(), timeout=30).results[0].children[0].result.children[0]
    assert later.model_version == "2"  # resolved when its job starts: the latest ready version


def test_an_unloaded_child_fails_its_subtree_and_a_removed_one_its_parent(srv, stub):
    manager = srv.app.manager
    manager.unload_model("tint")
    try:
        resp = stub.ClassifyObject(request(raw_image(IMAGE), _rois()[:2], model="paint"), timeout=30)
    finally:
        manager.load_model("tint")
    shade = resp.results[1].children[0]
    assert shade.result.class_name == "bright"
    (tint,) = shade.result.children
    assert tint.model == "tint" and tint.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    # Removed from the repository: the parent fails at the next scan, and says why.
    assert stub.ClassifyObject(request(raw_image(IMAGE), _rois()[:1], model="holder"), timeout=30).results
    shutil.rmtree(srv.repo / "spare")
    listing = {m.name: m for m in stub.ReloadModels(pb.ReloadModelsRequest(), timeout=60).models}
    (holder,) = listing["holder"].versions
    assert holder.state == pb.ModelVersionInfo.FAILED
    assert holder.reason.startswith("children[0]: unknown model 'spare'")
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyObject(request(raw_image(IMAGE), _rois()[:1], model="holder"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "unknown model 'spare'" in err.value.details()
    child_models.write_model(srv.repo, "spare", like="tint")  # back: the parent loads again
    listing = {m.name: m for m in stub.ReloadModels(pb.ReloadModelsRequest(), timeout=60).models}
    assert [v.state for v in listing["holder"].versions] == [pb.ModelVersionInfo.READY]
    resp = stub.ClassifyObject(request(raw_image(IMAGE), _rois()[:1], model="holder"), timeout=30)
    assert resp.results[0].children[0].result.class_name in ("greenish", "bluish")


def test_concurrent_trees_agree_with_one_alone(stub):
    req = request(raw_image(IMAGE), _rois(), model="paint")
    alone = stub.ClassifyObject(req, timeout=30)
    with ThreadPoolExecutor(4) as pool:
        many = list(pool.map(lambda _: stub.ClassifyObject(req, timeout=30), range(8)))
    assert all([_tree(r) for r in m.results] == [_tree(r) for r in alone.results] for m in many)


def test_a_grandchild_starts_when_its_parent_is_known_not_after_the_request(srv, stub):
    engine = srv.app.engine
    tint_before = engine.counters("tint", "1")["items"]
    call = stub.ClassifyObject.future(request(raw_image(IMAGE), _rois()[1:2], model="both"), timeout=60)
    counts = _wait_counts(engine, "tint", "items", tint_before + 1)
    assert not call.done()  # shade -> tint ran while its sibling slow still runs
    assert counts["items"] == tint_before + 1
    slow, shade = call.result().results[0].children
    assert (slow.model, shade.model) == ("slow", "shade")  # config order, whoever finished first
    assert shade.result.children[0].result.class_name == "greenish"


def test_a_same_child_keeps_the_polygon_mask_and_an_expanded_one_drops_it(stub):
    rois = _rois()
    for i in (1, 4):  # the left half of the square
        x = 12 + 40 * i
        rois[i].polygon.xy.extend([x, 16, x + SIDE / 2, 16, x + SIDE / 2, 16 + SIDE, x, 16 + SIDE])
    resp = stub.ClassifyObject(request(raw_image(IMAGE), [rois[1], rois[4]], model="paint"), timeout=30)
    red, blue = resp.results
    masked = IMAGE[16:16 + SIDE, 52:52 + SIDE].copy()
    masked[:, SIDE // 2:] = 0  # outside the mask: the fill (0)
    assert child_models.expected("shade", masked)[0] == "dark"  # unmasked: bright
    assert red.children[0].model == "shade" and red.children[0].result.class_name == "dark"
    grown = IMAGE[8:8 + 2 * SIDE, 172 - 8:172 - 8 + 2 * SIDE]
    assert child_models.expected("edge", grown)[0] == "light_around"  # masked: dark_around
    assert blue.children[0].model == "edge" and blue.children[0].result.class_name == "light_around"


def test_stream_frames_carry_their_trees(stub):
    frames = [request(raw_image(IMAGE), _rois(), model="paint", request_id=f"f{i}") for i in range(3)]
    alone = [_tree(r) for r in stub.ClassifyObject(frames[0], timeout=30).results]
    replies = list(stub.ClassifyObjectStream(iter(frames), timeout=30))
    assert [r.request_id for r in replies] == ["f0", "f1", "f2"]
    assert all([_tree(x) for x in r.response.results] == alone for r in replies)
