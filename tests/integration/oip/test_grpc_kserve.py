"""KServe's Python client (InferenceGRPCClient, its own venv: it clashes with
tritonclient in one process) against a live roiclass: readiness, and ModelInfer
bit-identical to v1 ClassifyObject."""
from __future__ import annotations

import numpy as np

from roiclass.v1 import classifier_pb2 as pb
from tests.integration.oip.test_grpc_tritonclient import MODEL, ROIS, v1_probabilities
from tests.integration.oip.tools import run_script, tool_python


def test_kserve_client_infers_as_v1_classifies(server, chelsea, tmp_path):
    python = tool_python("ROICLASS_KSERVE", "kserve-*", "the KServe client")
    np.save(tmp_path / "chelsea.npy", chelsea)
    np.save(tmp_path / "rois.npy", ROIS)
    summary = run_script(python, "kserve_grpc_check.py", server.address, MODEL, tmp_path)
    assert summary["live"] and summary["ready"] and summary["model_ready"]
    assert summary["id"] == "kserve-1"
    assert summary["output"] == {"name": "PROBABILITIES", "datatype": "FP32", "shape": [3, 1000]}
    height, width, _ = chelsea.shape
    raw = pb.Image(raw=pb.RawImage(width=width, height=height, pixel_format=pb.RGB8, pixels=chelsea.tobytes()))
    with np.load(tmp_path / "results.npz") as got:
        np.testing.assert_array_equal(got["probabilities"], v1_probabilities(server.address, raw, ROIS.tolist()))
