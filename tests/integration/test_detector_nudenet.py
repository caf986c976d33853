"""A real YOLOv8 detector from PyPI: NudeNet 3.4.2's wheel ships 320n.onnx
(YOLOv8n, 18 classes; its input padded at the top-left with black, then
resized to 320 x 320). On the same output tensor our decode + NMS equals
NudeNet's own postprocessing; through a real server, the detector's box of
the astronaut's face equals NudeNet's detect() up to the resampling (ours is
antialiased, OpenCV's blobFromImage resize is not).

`make test` installs nudenet with --no-deps (Makefile: it names the CPU
onnxruntime wheel, which would replace onnxruntime-gpu)."""
from __future__ import annotations

from pathlib import Path

import grpc
import nudenet.nudenet as nudenet
import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from roiclass.server.models.config import spec_from_config
from roiclass.server.pipeline.detect.detector import postprocess
from roiclass.server.pipeline.detect.letterbox import letterbox
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request
from tests.integration.serving import serve
from tests.unit.models.model_factory import make_classifier

MODEL = Path(nudenet.__file__).with_name("320n.onnx")
LABELS = getattr(nudenet, "__labels")
IMAGES = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
CONFIG = ("classes = [" + ", ".join(f'"{c}"' for c in LABELS) + "]\n[input]\nwidth = 320\nheight = 320\nfill = 0\n"
          # NudeNet: cv2.dnn.NMSBoxes over all classes at score 0.25, IoU 0.45, on the top-left padded square.
          '[detector]\nformat = "yolov8"\nconfidence = 0.25\niou = 0.45\nagnostic = true\nletterbox = "topleft"\n')


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("nudenet") / "repo"
    (root / "nudenet" / "1").mkdir(parents=True)
    (root / "nudenet" / "1" / "model.onnx").symlink_to(MODEL)
    (root / "nudenet" / "config.toml").write_text(CONFIG)
    make_classifier(root / "colors" / "1" / "model.onnx", num_classes=3, height=32, width=32)
    (root / "colors" / "config.toml").write_text('classes = ["red", "green", "blue"]\n')
    return root


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


@pytest.mark.parametrize("name", list(IMAGES))
def test_on_the_same_tensor_our_decode_and_nms_are_nudenets(repo, name):
    spec = spec_from_config(repo / "nudenet" / "config.toml", repo / "nudenet" / "1" / "model.onnx", "1", "nudenet")
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    bgr = np.ascontiguousarray(IMAGES[name][..., ::-1])
    blob, x_ratio, y_ratio, x_pad, y_pad, w, h = nudenet._read_image(bgr, 320)
    out = session.run(None, {session.get_inputs()[0].name: blob})[0]
    theirs = nudenet._postprocess([out], x_pad, y_pad, x_ratio, y_ratio, w, h, 320, 320)
    ours = postprocess(spec, out[0].ravel(), letterbox(w, h, 320, 320, "topleft"), w, h, 100)
    assert [d.class_name for d in ours] == [t["class"] for t in theirs]
    for d, t in zip(ours, theirs):
        assert d.confidence == pytest.approx(t["score"], abs=1e-6)
        # NudeNet truncates its boxes to whole pixels.
        assert [int(v) for v in (d.rect.x, d.rect.y)] == t["box"][:2]
        np.testing.assert_allclose([d.rect.width, d.rect.height], t["box"][2:], atol=1.0)


def test_through_the_server_the_face_is_nudenets_face(repo):
    image = IMAGES["astronaut"]
    theirs = nudenet.NudeDetector(providers=["CPUExecutionProvider"]).detect(np.ascontiguousarray(image[..., ::-1]))
    faces = [t for t in theirs if t["class"] == "FACE_FEMALE"]
    assert len(faces) == 1
    with serve("--models", str(repo)) as srv, grpc.insecure_channel(srv.address) as channel:
        stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
        resp = stub.ClassifyObject(request(raw_image(image), model="colors", detector="nudenet"), timeout=30)
    ours = [r for r in resp.results if r.detection.class_name == "FACE_FEMALE"]
    assert len(ours) == 1
    box = ours[0].detection.box
    assert _iou((box.origin.x, box.origin.y, box.width, box.height), faces[0]["box"]) > 0.9
    assert ours[0].detection.confidence == pytest.approx(faces[0]["score"], abs=0.15)
    assert ours[0].detection.model == "nudenet" and ours[0].class_name in ("red", "green", "blue")
