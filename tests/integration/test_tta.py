"""Test-time augmentation through a real server on loopback, port 0: with a
model whose output depends on the chip's orientation, a TTA request's
probabilities are the mean of the same model on the variants sent as plain
ROIs (Roi.mirror for the mirrored ones), built here from the ROI's corners."""
from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
from skimage.data import chelsea

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.geometry import Rect
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request
from tests.unit.server.pipeline.tta_model import CLASSES, SIZE, make_orientation_onnx

IMG = chelsea()
ROIS = [(120.3, 60.7, 70.2, 48.9, 17.0), (250.0, 150.0, 40.0, 40.0, 0.0), (60.5, 180.2, 90.1, 55.3, -35.0)]


def _config(extra: str = "") -> str:
    return (f"classes = {list(CLASSES)!r}\n".replace("'", '"')
            + f"[input]\nwidth = {SIZE}\nheight = {SIZE}\nnormalization = \"unit\"\n"
            + "[output]\nactivation = \"softmax\"\n" + extra)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    repo = tmp_path_factory.mktemp("tta")
    for name, extra in (("orient", ""), ("orient_flip", '[defaults]\ntta = "flip"\n')):
        make_orientation_onnx(repo / name / "1" / "model.onnx")
        (repo / name / "config.toml").write_text(_config(extra))
    server = BackgroundServer(ServerConfig(port=0, metrics_port=None, repositories=(repo,))).start()
    with grpc.insecure_channel(server.address) as ch:
        yield classifier_pb2_grpc.ObjectClassifierStub(ch)
    server.stop()


def pb_roi(x, y, w, h, angle, mirror=False) -> pb.Roi:
    return pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), angle=angle, width=w, height=h),
                  mirror=bool(mirror))


def variants(roi, tta: str) -> list[tuple]:
    """The variants as plain ROIs (x, y, w, h, angle, mirror), from the corners."""
    x, y, w, h, a = roi
    quad = Rect(*roi).corners()
    if tta == "flip":
        return [(*roi, 0), (*roi, 1)]
    if tta == "dihedral":
        return [(*quad[k], *((h, w) if k % 2 else (w, h)), a + 90 * k, m) for k in range(4) for m in (0, 1)]
    n, step = map(float, tta.split(":")[1:])
    cx, cy = np.mean(quad, axis=0)
    out = []
    for k in range(int(n)):
        t = a + (k - (n - 1) / 2) * step
        c, s = math.cos(math.radians(t)), math.sin(math.radians(t))
        out.append((cx - (w * c - h * s) / 2, cy - (w * s + h * c) / 2, w, h, t, 0))
    return out


def probabilities(result: pb.RoiResult) -> np.ndarray:
    p = np.zeros(len(CLASSES))
    for c in result.confidences:
        p[c.class_index] = c.confidence
    return p


def classify(stub, rois, **fields) -> pb.ClassifyObjectResponse:
    return stub.ClassifyObject(request(raw_image(IMG), rois, top_k=len(CLASSES), min_confidence=0.0,
                                       **fields), timeout=30)


@pytest.mark.parametrize("tta", ["flip", "dihedral", "rotations:5:12"])
def test_tta_is_the_mean_of_its_variants_sent_as_plain_rois(stub, tta):
    resp = classify(stub, [pb_roi(*r) for r in ROIS], model="orient", tta=tta, tta_spread=True)
    got = np.array([probabilities(r) for r in resp.results])
    rows = [v for r in ROIS for v in variants(r, tta)]
    plain = classify(stub, [pb_roi(*v) for v in rows], model="orient")
    each = np.array([probabilities(r) for r in plain.results]).reshape(len(ROIS), len(rows) // len(ROIS), -1)
    np.testing.assert_allclose(got, each.mean(1), rtol=1e-5, atol=1e-6)
    spread = np.array([list(r.tta.spread) for r in resp.results])
    np.testing.assert_allclose(spread, each.std(1), rtol=1e-4, atol=1e-6)
    assert spread.max() > 1e-3  # the variants do differ
    for r in resp.results:
        assert (r.tta.mode, r.tta.variants) == (tta, len(rows) // len(ROIS))
        assert r.class_index == int(np.argmax(probabilities(r)))
    # the ROI itself comes back as sent, not as a variant
    assert [r.aligned_roi.angle for r in resp.results] == pytest.approx([r[4] for r in ROIS])


def test_a_mirrored_roi_is_the_flipped_chip(stub):
    plain = classify(stub, [pb_roi(*ROIS[0])], model="orient").results[0]
    mirrored = classify(stub, [pb_roi(*ROIS[0], mirror=True)], model="orient").results[0]
    p, m = probabilities(plain), probabilities(mirrored)
    assert not np.allclose(p, m, atol=1e-3)
    # flip twice = none: a mirrored ROI under "flip" averages the same two chips
    a = classify(stub, [pb_roi(*ROIS[0])], model="orient", tta="flip").results[0]
    b = classify(stub, [pb_roi(*ROIS[0], mirror=True)], model="orient", tta="flip").results[0]
    np.testing.assert_allclose(probabilities(a), probabilities(b), rtol=1e-5)
    np.testing.assert_allclose(probabilities(a), (p + m) / 2, rtol=1e-5)


def test_the_models_default_tta_and_the_request_override(stub):
    rois = [pb_roi(*r) for r in ROIS[:2]]
    default = classify(stub, rois, model="orient_flip")
    assert [(r.tta.mode, r.tta.variants, len(r.tta.spread)) for r in default.results] == [("flip", 2, 0)] * 2
    flip = classify(stub, rois, model="orient", tta="flip")
    np.testing.assert_allclose([probabilities(r) for r in default.results],
                               [probabilities(r) for r in flip.results], rtol=1e-6)
    off = classify(stub, rois, model="orient_flip", tta="none")
    assert not any(r.HasField("tta") for r in off.results)
    plain = classify(stub, rois, model="orient")
    np.testing.assert_allclose([probabilities(r) for r in off.results],
                               [probabilities(r) for r in plain.results], rtol=1e-6)


@pytest.mark.parametrize("bad", ["mirror", "rotations:0:5", "rotations:3:0", "dihedral:2"])
def test_an_unknown_tta_is_invalid_argument_naming_the_field(stub, bad):
    with pytest.raises(grpc.RpcError) as err:
        classify(stub, [pb_roi(*ROIS[0])], model="orient", tta=bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tta" in err.value.details() and ("dihedral" in err.value.details() or "rotations:N:DEG" in err.value.details())
