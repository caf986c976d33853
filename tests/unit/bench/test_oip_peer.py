"""The Triton peer's preprocessing (bench/triton_peer/model.py, cv2) crops
what roiclass crops: the ROI's corners land on the input's corners, and the
tensor matches roiclass's kernel on the bench's own image and ROIs."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from roiclass.server.geometry import Rect

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import _raw  # noqa: E402
import oip_peer  # noqa: E402
import serving  # noqa: E402


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("triton_peer_model", BENCH / "triton_peer" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_spec():
    return serving.load_spec(serving.ROOT / "models" / "efficientnet_lite0")


@pytest.mark.parametrize("roi", [(150.0, 20.0, 170.0, 150.0, 10.0), (40.0, 200.0, 90.0, 30.0, -35.0),
                                 (10.0, 10.0, 50.0, 80.0, 0.0)])
def test_the_rois_corners_map_to_the_inputs_corners(peer, roi):
    m = np.vstack([peer.roi_matrix(roi, 224, 160), (0.0, 0.0, 1.0)])
    for (cx, cy), want in zip(Rect(*roi).corners(), [(0, 0), (224, 0), (224, 160), (0, 160)]):
        # corners are continuous coordinates; cv2 indexes pixel centres (-0.5)
        u, v, _ = m @ (cx - 0.5, cy - 0.5, 1.0)
        assert (u + 0.5, v + 0.5) == pytest.approx(want, abs=1e-9)


def test_the_peer_tensor_matches_roiclass_kernel(peer, model_spec):
    image, rois = serving.bench_image(3)
    call, reference = _raw.preprocess_call(model_spec, image, rois)
    call()
    out = np.empty_like(reference)
    peer.crops(image, rois, model_spec.input_width, model_spec.input_height,
               np.array(model_spec.mean[:3], np.float32), 1.0 / np.array(model_spec.std[:3], np.float32), out)
    # bilinear both; one grey level is 1/128 after (x - 127) / 128
    assert np.abs(out - reference).max() < 1.0 / 128


def test_the_peer_config_carries_the_models_facts(model_spec):
    text = oip_peer.config_pbtxt(model_spec, rois_per_request=4)
    assert f"max_batch_size: {model_spec.max_batch_size // 4}" in text
    assert f"max_queue_delay_microseconds: {model_spec.max_queue_delay_us}" in text
    assert f'dims: [ -1, {len(model_spec.classes)} ]' in text
    assert str(Path(model_spec.onnx_path).resolve()) in text


def test_several_peer_instances_split_the_cores(model_spec):
    one, two = oip_peer.config_pbtxt(model_spec, 4), oip_peer.config_pbtxt(model_spec, 4, instances=2)
    assert "count: 1 kind: KIND_CPU" in one and 'key: "intra_op_threads" value: { string_value: "0" }' in one
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert "count: 2 kind: KIND_CPU" in two
    assert f'key: "intra_op_threads" value: {{ string_value: "{threads}" }}' in two
