"""inference.GRPCInferenceService on the ObjectClassifier port, with roiclass's own stubs:
health and reflection (v1 and v1alpha) list it, token scopes and the undecodable-bytes
rule apply to it as to v1, and a stream's bad frame fails alone."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as alpha

from roiclass.inference import grpc_service_pb2 as pb
from roiclass.inference import grpc_service_pb2_grpc as pb_grpc
from roiclass.server.reflection import V1_SERVICE_NAME
from roiclass.server.security import SecurityConfig
from tests.integration.secure import ADMIN_TOKEN, CLASSIFY_TOKEN, image, start_server, tiny_repo, token_file

SERVICE = "inference.GRPCInferenceService"
GARBAGE = bytes.fromhex("ffffffffff0f1280")  # a truncated varint field: DecodeError


def infer_request(model: str, array: np.ndarray, request_id: str = "") -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model, id=request_id)
    req.inputs.add(name="IMAGE", datatype="UINT8", shape=array.shape)
    req.raw_input_contents.append(array.tobytes())
    return req


def test_health_serves_the_service(channel):
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def reflect(channel, method: str, request: alpha.ServerReflectionRequest, response_class):
    call = channel.stream_stream(method, request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=response_class.FromString)
    return next(iter(call(iter([request]), timeout=10)))


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_and_describes_the_service(channel, version):
    # v1 messages built from v1's own descriptors (registered by the server module), not v1alpha's.
    pool = descriptor_pool.Default()
    package = f"grpc.reflection.{version}"
    request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ServerReflectionRequest"))
    response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ServerReflectionResponse"))
    method = f"/{package}.ServerReflection/ServerReflectionInfo"
    listed = reflect(channel, method, request_class(list_services=""), response_class)
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE, "roiclass.v1.ObjectClassifier", V1_SERVICE_NAME, "grpc.reflection.v1alpha.ServerReflection",
            "grpc.health.v1.Health"} <= names
    described = reflect(channel, method, request_class(file_containing_symbol=SERVICE), response_class)
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    service = next(s for f in files for s in f.service if s.name == "GRPCInferenceService")
    assert {m.name for m in service.method} >= {"ModelInfer", "ModelStreamInfer", "ModelConfig", "RepositoryModelLoad"}
    assert any(f.name == "roiclass/inference/model_config.proto" for f in files)  # its import comes along


def test_undecodable_request_is_invalid_argument(channel):
    call = channel.unary_unary(f"/{SERVICE}/ModelInfer", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(GARBAGE, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "do not parse as inference.ModelInferRequest" in info.value.details()


def test_a_bad_stream_frame_fails_alone(channel, chelsea):
    good = infer_request("efficientnet_lite0", chelsea[:64, :64], "good").SerializeToString()
    call = channel.stream_stream(f"/{SERVICE}/ModelStreamInfer", request_serializer=None,
                                 response_deserializer=pb.ModelStreamInferResponse.FromString)
    replies = list(call(iter([good, GARBAGE, good]), timeout=60))
    assert [r.infer_response.id for r in replies] == ["good", "", "good"]
    assert [bool(r.error_message) for r in replies] == [False, True, False]
    assert "do not parse as inference.ModelInferRequest" in replies[1].error_message
    assert replies[0].infer_response.raw_output_contents == replies[2].infer_response.raw_output_contents


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oip-auth")
    srv = start_server(tiny_repo(folder), SecurityConfig(auth_tokens=token_file(folder)))
    yield srv
    srv.stop()


def _call(stub_call, request, token):
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        stub_call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_token_scopes_guard_the_service(secured):
    with grpc.insecure_channel(secured.address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        infer = infer_request("tiny", image())
        unload = pb.RepositoryModelUnloadRequest(model_name="no_such_model")
        # Liveness and readiness are open, like grpc.health.
        assert _call(stub.ServerLive, pb.ServerLiveRequest(), None) == grpc.StatusCode.OK
        assert _call(stub.ServerReady, pb.ServerReadyRequest(), None) == grpc.StatusCode.OK
        assert _call(stub.ModelReady, pb.ModelReadyRequest(name="tiny"), None) == grpc.StatusCode.OK
        assert _call(stub.ModelInfer, infer, None) == grpc.StatusCode.UNAUTHENTICATED
        assert _call(stub.ServerMetadata, pb.ServerMetadataRequest(), None) == grpc.StatusCode.UNAUTHENTICATED
        assert _call(stub.ModelInfer, infer, CLASSIFY_TOKEN) == grpc.StatusCode.OK
        assert _call(stub.ModelInfer, infer, ADMIN_TOKEN) == grpc.StatusCode.PERMISSION_DENIED
        assert _call(stub.RepositoryModelUnload, unload, CLASSIFY_TOKEN) == grpc.StatusCode.PERMISSION_DENIED
        assert _call(stub.RepositoryModelUnload, unload, ADMIN_TOKEN) == grpc.StatusCode.NOT_FOUND


def test_a_draining_server_refuses_new_calls(tmp_path):
    srv = start_server(tiny_repo(tmp_path), SecurityConfig())
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            assert _call(stub.ModelInfer, infer_request("tiny", image()), None) == grpc.StatusCode.OK
            srv.app.drain.start_draining()  # what stop() does first
            assert _call(stub.ModelInfer, infer_request("tiny", image()), None) == grpc.StatusCode.UNAVAILABLE
            assert srv.app.drain.in_flight == 0
    finally:
        srv.stop()
