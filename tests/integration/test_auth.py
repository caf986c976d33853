"""Token auth, scopes, open health, the reflection flag and /metrics over TLS with a token,
on a live server (tokens written to a file in the test)."""
from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from roiclass.client import Classifier, ClassifierError, TlsConfig
from roiclass.client.types import Frame
from roiclass.server.security import SecurityConfig
from tests.certs import make_pki
from tests.integration.secure import (
    ADMIN_TOKEN, ALL_TOKEN, CLASSIFY_TOKEN, METRICS_TOKEN, image, start_server, tiny_repo, tls_security,
    token_file,
)

ROI = [(2, 2, 30, 30, 10.0)]
WRONG_TOKEN = "tok-wrong-0123456789abcdef"
EVERY_TOKEN = (CLASSIFY_TOKEN, ADMIN_TOKEN, METRICS_TOKEN, ALL_TOKEN, WRONG_TOKEN)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def server(folder):
    srv = start_server(tiny_repo(folder), SecurityConfig(auth_tokens=token_file(folder)), metrics_port=0)
    yield srv
    srv.stop()


def _code(call) -> grpc.StatusCode:
    with pytest.raises(ClassifierError) as info:
        call()
    return info.value.code, info.value.message


def test_a_classify_token_classifies(server):
    with Classifier(server.address, token=CLASSIFY_TOKEN) as classifier:
        assert classifier.list_models().default_model == "tiny"
        assert classifier.get_model("tiny").name == "tiny"
        assert len(classifier.classify(image(), rois=ROI).results) == 1
        items = list(classifier.stream([Frame(image(), rois=ROI, request_id="a")]))
        assert [i.ok for i in items] == [True]


@pytest.mark.parametrize("token", [None, WRONG_TOKEN])
def test_a_missing_or_unknown_token_is_unauthenticated(server, token):
    with Classifier(server.address, token=token) as classifier:
        for call in (classifier.list_models, lambda: classifier.classify(image(), rois=ROI),
                     classifier.reload_models):
            code, message = _code(call)
            assert code == grpc.StatusCode.UNAUTHENTICATED
            assert WRONG_TOKEN not in message
        code, _ = _code(lambda: list(classifier.stream([Frame(image(), rois=ROI)])))
        assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_malformed_authorization_header_is_unauthenticated(server):
    with grpc.insecure_channel(server.address) as channel:
        method = channel.unary_unary("/roiclass.v1.ObjectClassifier/ListModels",
                                     request_serializer=lambda m: b"", response_deserializer=bytes)
        for value in (f"Basic {CLASSIFY_TOKEN}", CLASSIFY_TOKEN, "Bearer "):
            with pytest.raises(grpc.RpcError) as info:
                method(None, metadata=(("authorization", value),), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", [CLASSIFY_TOKEN, METRICS_TOKEN])
def test_admin_needs_the_admin_scope(server, token):
    with Classifier(server.address, token=token) as classifier:
        code, message = _code(classifier.reload_models)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "ReloadModels" in message and "'admin'" in message


def test_a_token_without_classify_cannot_classify(server):
    with Classifier(server.address, token=ADMIN_TOKEN) as classifier:
        code, message = _code(lambda: classifier.classify(image(), rois=ROI))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "'classify'" in message
        assert classifier.reload_models().default_model == "tiny"


def test_health_stays_open_without_a_token(server):
    with Classifier(server.address) as classifier:
        assert classifier.health() == "SERVING"
        assert classifier.health("tiny") == "SERVING"
    with grpc.insecure_channel(server.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_needs_no_token(server):
    with grpc.insecure_channel(server.address) as channel:
        assert "roiclass.v1.ObjectClassifier" in set(ProtoReflectionDescriptorDatabase(channel).get_services())


def test_auth_failures_are_counted_like_other_errors(server):
    with Classifier(server.address, token=WRONG_TOKEN) as classifier:
        _code(classifier.list_models)
    body = _metrics(server, ALL_TOKEN)
    assert 'code="UNAUTHENTICATED"' in body


def test_an_unauthenticated_caller_does_not_learn_that_the_server_drains(server):
    server.app.drain.draining = True
    try:
        with Classifier(server.address) as classifier:
            assert _code(classifier.list_models)[0] == grpc.StatusCode.UNAUTHENTICATED
        with Classifier(server.address, token=CLASSIFY_TOKEN) as classifier:
            assert _code(classifier.list_models)[0] == grpc.StatusCode.UNAVAILABLE
    finally:
        server.app.drain.draining = False


def _metrics(server, token=None, scheme="http", context=None) -> str:
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{server.app.metrics_port}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5, context=context) as reply:
        return reply.read().decode()


@pytest.mark.parametrize("token,status", [(None, 401), (WRONG_TOKEN, 401), (CLASSIFY_TOKEN, 403), (ADMIN_TOKEN, 403)])
def test_metrics_need_a_metrics_token(server, token, status):
    with pytest.raises(urllib.error.HTTPError) as info:
        _metrics(server, token)
    assert info.value.code == status


def test_metrics_with_a_metrics_token(server):
    assert "roiclass_requests" in _metrics(server, METRICS_TOKEN)


def test_tokens_never_reach_logs_or_metrics(server, caplog):
    with caplog.at_level(logging.DEBUG):
        for token in EVERY_TOKEN:
            with Classifier(server.address, token=token) as classifier:
                for call in (classifier.list_models, classifier.reload_models,
                             lambda: classifier.classify(image(), rois=ROI)):
                    try:
                        call()
                    except ClassifierError:
                        pass
            try:
                _metrics(server, token)
            except urllib.error.HTTPError:
                pass
    body = _metrics(server, METRICS_TOKEN)
    for token in EVERY_TOKEN:
        assert token not in caplog.text
        assert token not in body


def test_metrics_over_tls_with_a_token(tmp_path):
    pki = make_pki(tmp_path / "pki")
    srv = start_server(tiny_repo(tmp_path), tls_security(pki, auth_tokens=token_file(tmp_path)), metrics_port=0)
    try:
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        assert "roiclass_requests" in _metrics(srv, METRICS_TOKEN, "https", trusted)
        with pytest.raises(urllib.error.HTTPError) as info:
            _metrics(srv, None, "https", trusted)
        assert info.value.code == 401
        with pytest.raises(OSError):  # a plaintext scrape gets no metrics (reset or URLError)
            _metrics(srv, METRICS_TOKEN)
        with pytest.raises(OSError):  # nor one that does not trust the CA
            _metrics(srv, METRICS_TOKEN, "https", ssl.create_default_context(cafile=str(pki.other_ca)))
        with Classifier(srv.address, tls=TlsConfig(ca=pki.ca), token=CLASSIFY_TOKEN) as classifier:
            assert len(classifier.classify(image(), rois=ROI).results) == 1
    finally:
        srv.stop()


def test_reflection_off(tmp_path):
    srv = start_server(tiny_repo(tmp_path), SecurityConfig(reflection=False))
    try:
        with grpc.insecure_channel(srv.address) as channel:
            with pytest.raises(grpc.RpcError) as info:
                ProtoReflectionDescriptorDatabase(channel).get_services()
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            with Classifier(srv.address) as classifier:
                assert classifier.health() == "SERVING"
    finally:
        srv.stop()


@pytest.mark.parametrize("host,warned", [("0.0.0.0", 1), ("127.0.0.1", 0)])
def test_plaintext_on_a_non_loopback_address_warns(tmp_path, caplog, host, warned):
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig
    from roiclass.server.engine import EngineConfig

    with caplog.at_level(logging.WARNING, logger="roiclass.server.app"):
        srv = BackgroundServer(ServerConfig(host=host, port=0, repositories=(tiny_repo(tmp_path),),
                                            engine=EngineConfig(devices="cpu"))).start()
        srv.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "without TLS" in r.getMessage()]
    assert len(warnings) == warned


def test_sighup_reload_revokes_a_removed_token_and_keeps_tokens_on_a_bad_file(tmp_path, caplog):
    from tests.integration.secure import TOKENS_TEXT

    path = token_file(tmp_path)
    srv = start_server(tiny_repo(tmp_path), SecurityConfig(auth_tokens=path))
    try:
        path.write_text(TOKENS_TEXT.replace(f"{CLASSIFY_TOKEN} classify\n", ""))
        srv.app.reload_security()
        with Classifier(srv.address, token=CLASSIFY_TOKEN) as classifier:
            assert _code(classifier.list_models)[0] == grpc.StatusCode.UNAUTHENTICATED
        path.write_text(f"{ALL_TOKEN} classify,superuser\n")
        with caplog.at_level(logging.WARNING, logger="roiclass.server.app"):
            srv.app.reload_security()
        assert f"{path}:1: unknown scope 'superuser'" in caplog.text and ALL_TOKEN not in caplog.text
        with Classifier(srv.address, token=ALL_TOKEN) as classifier:
            assert classifier.list_models().default_model == "tiny"
    finally:
        srv.stop()
