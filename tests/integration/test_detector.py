"""A detector and a classifier through a real server: ClassifyObject with
detector = NAME and no ROIs gives one result per detected square, with the
detector's box, class and confidence and the classifier's class."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc
from tests.detector_models import cell_detector
from tests.integration.requests import raw_image, request, roi
from tests.integration.serving import serve
from tests.unit.models.model_factory import make_classifier

# (x0, y0, x1, y1, rgb) on a 128 x 64 image, each inside one cell of the detector's
# 64 x 64 input once centred (see tests/detector_models.py).
SQUARES = [(8, 6, 24, 22, (255, 0, 0)), (72, 36, 92, 60, (0, 230, 0)), (100, 40, 120, 56, (180, 0, 0))]


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    repo = tmp_path_factory.mktemp("detector") / "repo"
    cell_detector(repo / "cells" / "1" / "model.onnx")
    (repo / "cells" / "config.toml").write_text(
        'classes = ["red", "green"]\n[input]\nfill = 114\n[detector]\nformat = "yolov8"\nconfidence = 0.5\n')
    cell_detector(repo / "greens" / "1" / "model.onnx")
    (repo / "greens" / "config.toml").write_text(
        'classes = ["red", "green"]\n[detector]\nformat = "yolov8"\nconfidence = 0.5\nclasses = [1]\n'
        'letterbox = "topleft"\n')
    # make_classifier: class k reacts to channel k % 3, class 3 twice as much to red.
    make_classifier(repo / "colors" / "1" / "model.onnx", num_classes=4, height=32, width=32)
    (repo / "colors" / "config.toml").write_text('classes = ["red", "green", "blue", "reddest"]\n')
    make_classifier(repo / "auto" / "1" / "model.onnx", num_classes=4, height=32, width=32)
    (repo / "auto" / "config.toml").write_text('classes = ["r", "g", "b", "rr"]\n[defaults]\ndetector = "cells"\n')
    with serve("--models", str(repo)) as srv, grpc.insecure_channel(srv.address) as ch:
        yield classifier_pb2_grpc.ObjectClassifierStub(ch)


@pytest.fixture(scope="module")
def image() -> pb.Image:
    img = np.zeros((64, 128, 3), np.uint8)
    for x0, y0, x1, y1, rgb in SQUARES:
        img[y0:y1, x0:x1] = rgb
    return raw_image(img)


def _boxes(results):
    return [(r.detection.box.origin.x, r.detection.box.origin.y, r.detection.box.width, r.detection.box.height)
            for r in results]


def test_each_square_gets_its_roi_the_detectors_box_and_the_classifiers_class(stub, image):
    resp = stub.ClassifyObject(request(image, model="colors", detector="cells"), timeout=10)
    want = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1, _ in SQUARES]
    np.testing.assert_allclose(_boxes(resp.results), want, atol=1e-3)
    got = [(r.detection.class_name, round(r.detection.confidence, 3), r.detection.model, r.class_name)
           for r in resp.results]
    assert got == [("red", 1.0, "cells", "reddest"), ("green", round(230 / 255, 3), "cells", "green"),
                   ("red", round(180 / 255, 3), "cells", "reddest")]
    aligned = [(r.aligned_roi.origin.x, r.aligned_roi.origin.y, r.aligned_roi.width, r.aligned_roi.height)
               for r in resp.results]
    np.testing.assert_allclose(aligned, want, atol=1e-3)  # the classifier ran on the detector's box


def test_a_classifier_with_a_default_detector_runs_it_on_a_request_without_rois(stub, image):
    resp = stub.ClassifyObject(request(image, model="auto"), timeout=10)
    assert [r.detection.class_name for r in resp.results] == ["red", "green", "red"]
    assert [r.class_name for r in resp.results] == ["rr", "g", "rr"]


def test_get_model_shows_the_detector_and_its_filter_by_name(stub, image):
    info = stub.GetModel(pb.GetModelRequest(name="greens"), timeout=10).detector
    assert (info.format, round(info.confidence, 3), list(info.classes), info.letterbox) == (
        "yolov8", 0.5, ["green"], "topleft")
    resp = stub.ClassifyObject(request(image, model="colors", detector="greens"), timeout=10)
    assert [(r.detection.class_name, r.class_name) for r in resp.results] == [("green", "green")]


def _error(stub, req) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.ClassifyObject(req, timeout=10)
    return info.value


def test_a_model_that_is_not_a_detector_is_refused_naming_detector(stub, image):
    err = _error(stub, request(image, model="colors", detector="auto"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "detector" in err.details() and "cells" in err.details()  # the detectors there are


def test_an_unknown_detector_is_not_found(stub, image):
    err = _error(stub, request(image, model="colors", detector="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()


def test_rois_with_a_detector_are_refused(stub, image):
    err = _error(stub, request(image, [roi(0, 0, 10, 10)], model="colors", detector="cells"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "detector" in err.details()


def test_a_detector_named_as_the_model_is_refused(stub, image):
    err = _error(stub, request(image, model="cells"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "model" in err.details()


def test_the_server_still_serves_after_the_errors(stub, image):
    resp = stub.ClassifyObject(request(image, model="colors", detector="cells"), timeout=10)
    assert len(resp.results) == 3
