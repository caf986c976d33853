"""A detector model of the repository is not an Open Inference Protocol model:
its rows are raw boxes, not the classes its metadata would promise."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from roiclass.inference import grpc_service_pb2_grpc as pb_grpc
from tests.detector_models import cell_detector
from tests.integration.oip.test_grpc_service import infer_request
from tests.integration.serving import serve


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    repo = tmp_path_factory.mktemp("oip-detector") / "repo"
    cell_detector(repo / "cells" / "1" / "model.onnx")
    (repo / "cells" / "config.toml").write_text('classes = ["red", "green"]\n[detector]\nformat = "yolov8"\n')
    with serve("--models", str(repo)) as srv, grpc.insecure_channel(srv.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def test_infer_on_a_detector_is_failed_precondition_naming_it(stub):
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(infer_request("cells", image), timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'cells' is a detector" in info.value.details() and "`detector`" in info.value.details()
