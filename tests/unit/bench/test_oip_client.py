"""bench/oip_client.py: the v2 request the bench's own client sends, and its
reading of the classification extension's BYTES answer."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from roiclass.inference import grpc_service_pb2 as pb2

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import oip_client  # noqa: E402


def _bytes_tensor(strings: list[str]) -> bytes:
    return b"".join(len(s.encode()).to_bytes(4, "little") + s.encode() for s in strings)


def test_top1_is_the_first_string_of_each_rois_top_k():
    strings = ["0.72:285:Egyptian cat", "0.1:281:tabby, tabby cat", "0.05:282:tiger cat",
               "0.6:281:tabby, tabby cat", "0.3:285:Egyptian cat", "0.01:1:goldfish"]
    response = pb2.ModelInferResponse(
        outputs=[pb2.ModelInferResponse.InferOutputTensor(name="PROBABILITIES", datatype="BYTES", shape=[2, 3])],
        raw_output_contents=[_bytes_tensor(strings)])
    assert oip_client.top1_of_classification(response) == [285, 281]


def test_the_request_carries_image_rois_and_the_classification_parameter():
    image = np.zeros((4, 6, 3), np.uint8)
    rois = np.array([[0, 0, 3, 2, 5.0], [1, 1, 2, 2, 0.0]])
    request = oip_client.classify_request("m", image, rois, top_k=5)
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [("IMAGE", "UINT8", [4, 6, 3]),
                                                                            ("ROIS", "FP32", [2, 5])]
    np.testing.assert_array_equal(np.frombuffer(request.raw_input_contents[1], "<f4"), rois.ravel())
    assert request.outputs[0].parameters["classification"].int64_param == 5
    assert "classification" not in oip_client.classify_request("m", image, rois, top_k=0).outputs[0].parameters
