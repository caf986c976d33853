"""ListModels / GetModel describe what is really loaded, and health agrees."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.v1 import classifier_pb2 as pb


def test_list_models_describes_the_default_model(stub):
    resp = stub.ListModels(pb.ListModelsRequest(), timeout=10)
    assert resp.default_model == "efficientnet_lite0"
    (info,) = [m for m in resp.models if m.name == "efficientnet_lite0"]
    assert len(info.classes) == 1000 and info.classes[281] .lower().startswith("tabby")
    assert (info.input_width, info.input_height, info.channels) == (224, 224, 3)
    assert info.layout == "NCHW" and info.channel_order == "RGB" and info.max_batch_size >= 1
    (version,) = info.versions
    assert version.state == pb.ModelVersionInfo.READY and version.version == "1"
    assert version.instances and all(i.device == "cpu" and i.healthy for i in version.instances)
    assert all(i.provider == "CPUExecutionProvider" for i in version.instances)


def test_get_model_by_name_and_version(stub):
    info = stub.GetModel(pb.GetModelRequest(name="efficientnet_lite0", version="1"), timeout=10)
    assert info.name == "efficientnet_lite0" and [v.version for v in info.versions] == ["1"]
    with pytest.raises(grpc.RpcError) as err:
        stub.GetModel(pb.GetModelRequest(name="efficientnet_lite0", version="9"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_overall_and_per_model(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "roiclass.v1.ObjectClassifier", "efficientnet_lite0"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as err:
        health.Check(health_pb2.HealthCheckRequest(service="no-such-model"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
