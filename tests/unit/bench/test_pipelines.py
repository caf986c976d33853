"""bench/pipelines.py: its detector finds the bench image's squares, the
three-call client's decode (the server's decoder on the tensor server's
output) gives those ROIs, and the targets read the ratios the right way."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import _pipeline_models as models  # noqa: E402
import pipelines  # noqa: E402

from roiclass.inference import grpc_service_pb2 as oip  # noqa: E402


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path, _, _ = models.write_repository(tmp_path_factory.mktemp("pipelines"), "small")
    return path


def test_the_detector_server_output_decodes_to_the_squares(repo):
    servicer = pipelines.DetectorServicer(str(repo / models.DETECTOR / "1" / "model.onnx"))
    image = models.bench_image()
    tensor = oip.ModelInferRequest.InferInputTensor(name="image", datatype="UINT8", shape=list(image.shape))
    reply = servicer._run(oip.ModelInferRequest(inputs=[tensor], raw_input_contents=[image.tobytes()]))
    out = np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(tuple(reply.outputs[0].shape))
    assert out.shape == (1, 5, models.GRID * models.GRID)
    rows = pipelines.decoder(repo)(out[0], image.shape[1], image.shape[0])
    order = np.lexsort((rows[:, 0], rows[:, 1]))
    np.testing.assert_allclose(rows[order], models.expected_rois(), atol=1e-3)


def test_a_dark_image_has_no_detections(repo):
    session = ort.InferenceSession(str(repo / models.DETECTOR / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = pipelines.letterbox(np.zeros((300, 500, 3), np.uint8), models.DET_SIDE)[0]
    out = session.run(None, {"images": x})[0]
    assert len(pipelines.decoder(repo)(out[0], 500, 300)) == 0


def test_targets_compare_each_ratio_in_its_direction():
    def ratios(latency, throughput, bound):
        r = {"latency_c1_pipeline_over_three_calls": latency, "throughput_c16_pipeline_over_three_calls": throughput,
             "latency_c1_pipeline_over_bound": bound}
        return {"ratios": {k: {"ratio": v, "per_repeat_min": v, "per_repeat_max": v} for k, v in r.items()}}

    met = pipelines.targets({"small": ratios(0.5, 1.6, 9.0), "large": ratios(0.9, 1.01, 1.1)})
    assert [t["met"] for t in met] == [True, True, True, True]
    missed = pipelines.targets({"small": ratios(0.7, 1.4, 1.0), "large": ratios(0.5, 1.0, 1.2)})
    assert [t["met"] for t in missed] == [False, False, False, False]
