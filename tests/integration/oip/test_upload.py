"""RepositoryModelLoad with Triton's `file:` parameters (gRPC bytes, REST base64): a model
sent as files is served; bad uploads get the status that names what is wrong."""
from __future__ import annotations

import base64

import grpc
import httpx
import pytest

from roiclass.inference import grpc_service_pb2 as pb
from roiclass.inference import grpc_service_pb2_grpc as pb_grpc
from roiclass.server.security import SecurityConfig
from tests.integration.secure import start_server, tiny_repo


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("upload")
    repo = tiny_repo(folder)
    srv = start_server(repo, SecurityConfig(), http_port=0)
    files = {path.relative_to(repo / "tiny").as_posix(): path.read_bytes()
             for path in (repo / "tiny").rglob("*") if path.is_file()}
    with grpc.insecure_channel(srv.address) as channel:
        yield srv, pb_grpc.GRPCInferenceServiceStub(channel), files
    srv.stop()


def _load(stub, name: str, files: dict[str, bytes], **extra) -> grpc.StatusCode:
    request = pb.RepositoryModelLoadRequest(model_name=name)
    for path, data in files.items():
        request.parameters[f"file:{path}"].bytes_param = data
    for key, value in extra.items():
        request.parameters[key].string_param = value
    try:
        stub.RepositoryModelLoad(request, timeout=60)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, ""


def test_a_model_sent_as_files_is_served(served):
    srv, stub, files = served
    with pytest.raises(grpc.RpcError):
        stub.ModelReady(pb.ModelReadyRequest(name="copy"), timeout=10)  # not there before
    assert _load(stub, "copy", files) == (grpc.StatusCode.OK, "")
    assert stub.ModelReady(pb.ModelReadyRequest(name="copy"), timeout=10).ready
    assert _load(stub, "copy", files)[0] == grpc.StatusCode.OK  # sent again: replaced, still served


def test_bad_uploads_name_what_is_wrong(served):
    srv, stub, files = served
    code, details = _load(stub, "evil", {**files, "../escape.onnx": b"x"})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "parameters.file:../escape.onnx" in details
    code, details = _load(stub, "cfg", files, config="{}")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "parameters.config" in details
    code, details = _load(stub, "broken", {**files, "1/model.onnx": b"not an onnx file"})
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "did not load" in details
    code, details = _load(stub, "tiny", files)  # served from the repository
    assert code == grpc.StatusCode.ALREADY_EXISTS and "own source" in details
    assert stub.ModelReady(pb.ModelReadyRequest(name="tiny"), timeout=10).ready  # untouched


def test_rest_load_takes_base64_files(served):
    srv, stub, files = served
    base = f"http://127.0.0.1:{srv.app.http_port}"
    params = {f"file:{path}": base64.b64encode(data).decode() for path, data in files.items()}
    reply = httpx.post(f"{base}/v2/repository/models/viarest/load", json={"parameters": params}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert httpx.get(f"{base}/v2/models/viarest/ready", timeout=10).status_code == 200
    bad = httpx.post(f"{base}/v2/repository/models/x/load", json={"parameters": {"file:config.toml": "***"}},
                     timeout=10)
    assert bad.status_code == 400 and "base64" in bad.json()["error"]
