"""(N, 6) rows (the mirror flag) on an I420 frame: each mirrored ROI's tensor
is np.flip of the unmirrored one (fails while yuv.py reshapes rows to 5 columns)."""
import cv2
import numpy as np
from skimage.data import chelsea

from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.metrics import Metrics
from roiclass.server.models.spec import ModelSpec
from tests.unit.server.pipeline.tta_model import CLASSES, SIZE, make_orientation_onnx

ROIS = np.array([[120.3, 60.7, 70.2, 48.9, 17.0], [250.0, 150.0, 40.0, 40.0, 0.0]])


def test_i420_mirror(tmp_path):
    path = make_orientation_onnx(tmp_path / "o.onnx")
    e = Engine(EngineConfig(devices="cpu", cpu_threads=1), Metrics())
    try:
        e.load(ModelSpec(name="o", version="1", onnx_path=path, classes=CLASSES, input_width=SIZE,
                         input_height=SIZE, channels=3))
        m = e.resolve("o")
        frame = cv2.cvtColor(np.ascontiguousarray(chelsea()[:300, :450]), cv2.COLOR_RGB2YUV_I420)
        plain = e.preprocess(m, frame, "I420", ROIS)
        mirrored = e.preprocess(m, frame, "I420", np.hstack([ROIS, [[1.0], [0.0]]]))
        assert np.array_equal(mirrored[0], np.flip(plain[0], -1))
        assert np.array_equal(mirrored[1], plain[1])
    finally:
        e.close(grace_s=1.0)
