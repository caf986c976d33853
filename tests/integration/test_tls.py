"""TLS and mutual TLS on a live server, certificates made in the test (tests/certs.py)."""
from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import urllib.request

import grpc
import pytest

from roiclass.client import AsyncClassifier, Classifier, ClassifierError, TlsConfig
from roiclass.client.types import Frame
from tests.certs import common_name, issue_server_cert, make_pki
from tests.integration.secure import image, start_server, tiny_repo, tls_security

ROI = [(2, 2, 30, 30, 10.0)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_repo(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(pki, repo):
    srv = start_server(repo, tls_security(pki))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(pki, repo):
    srv = start_server(repo, tls_security(pki, tls_client_ca=pki.ca, require_client_cert=True))
    yield srv
    srv.stop()


def _fails_unavailable(address: str, **client) -> ClassifierError:
    with Classifier(address, timeout=5, **client) as classifier:
        with pytest.raises(ClassifierError) as info:
            classifier.list_models()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE, info.value
    return info.value


def test_tls_works(tls_server, pki):
    with Classifier(tls_server.address, tls=TlsConfig(ca=pki.ca)) as classifier:
        assert classifier.list_models().default_model == "tiny"
        result = classifier.classify(image(), rois=ROI)
        assert len(result.results) == 1
        assert classifier.health() == "SERVING"


def test_tls_by_dns_name_and_pem_bytes(tls_server, pki):
    address = tls_server.address.replace("127.0.0.1", "localhost")
    with Classifier(address, tls=TlsConfig(ca=pki.read("ca"))) as classifier:
        assert classifier.list_models().default_model == "tiny"


def test_async_client_over_tls(tls_server, pki):
    async def main():
        async with AsyncClassifier(tls_server.address, tls=TlsConfig(ca=pki.ca)) as classifier:
            return (await classifier.list_models()).default_model

    assert asyncio.run(main()) == "tiny"


def test_a_plaintext_client_fails(tls_server):
    _fails_unavailable(tls_server.address)


def test_a_client_trusting_another_ca_fails(tls_server, pki):
    _fails_unavailable(tls_server.address, tls=TlsConfig(ca=pki.other_ca))


def test_a_client_trusting_the_system_cas_fails_on_a_private_ca(tls_server):
    _fails_unavailable(tls_server.address, tls=True)


def test_an_expired_server_certificate_fails(pki, repo):
    srv = start_server(repo, tls_security(pki, tls_cert=pki.expired_cert, tls_key=pki.expired_key))
    try:
        _fails_unavailable(srv.address, tls=TlsConfig(ca=pki.ca))
    finally:
        srv.stop()


def test_a_server_certificate_from_another_ca_fails(pki, repo):
    srv = start_server(repo, tls_security(pki, tls_cert=pki.other_server_cert, tls_key=pki.other_server_key))
    try:
        _fails_unavailable(srv.address, tls=TlsConfig(ca=pki.ca))
    finally:
        srv.stop()


def test_mtls_without_a_client_certificate_fails(mtls_server, pki):
    _fails_unavailable(mtls_server.address, tls=TlsConfig(ca=pki.ca))


def test_mtls_with_a_client_certificate_of_another_ca_fails(mtls_server, pki):
    _fails_unavailable(mtls_server.address,
                       tls=TlsConfig(ca=pki.ca, cert=pki.other_client_cert, key=pki.other_client_key))


def test_mtls_with_the_right_client_certificate_works(mtls_server, pki):
    tls = TlsConfig(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    with Classifier(mtls_server.address, tls=tls) as classifier:
        assert len(classifier.classify(image(), rois=ROI).results) == 1


def test_metrics_over_mtls_need_the_client_certificate(pki, repo):
    srv = start_server(repo, tls_security(pki, tls_client_ca=pki.ca, require_client_cert=True), metrics_port=0)
    url = f"https://127.0.0.1:{srv.app.metrics_port}/metrics"
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5, context=ctx).read()
        wrong = ssl.create_default_context(cafile=str(pki.ca))
        wrong.load_cert_chain(pki.other_client_cert, pki.other_client_key)
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5, context=wrong).read()
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
        assert b"roiclass_requests" in urllib.request.urlopen(url, timeout=5, context=ctx).read()
    finally:
        srv.stop()


def test_client_cert_without_key_is_a_usage_error(pki):
    with pytest.raises(ValueError, match="cert and key go together"):
        Classifier("127.0.0.1:1", tls=TlsConfig(ca=pki.ca, cert=pki.client_cert))


def _served_common_name(port: int, ca, alpn: str = "h2") -> str:
    """The CN of the certificate a new TLS connection gets (ALPN h2, as gRPC speaks)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return common_name(ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)).encode())


def test_certificate_rotation_without_restart(pki, repo, tmp_path):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    srv = start_server(repo, tls_security(pki, tls_cert=cert, tls_key=key), metrics_port=0)
    try:
        port = srv.app.port
        assert _served_common_name(port, pki.ca) == "roiclass-server"
        assert _served_common_name(srv.app.metrics_port, pki.ca, "http/1.1") == "roiclass-server"
        with Classifier(srv.address, tls=TlsConfig(ca=pki.ca)) as before:
            frames = _FrameFeed()
            stream = before.stream(frames)
            frames.put(0)
            assert next(stream).ok
            # Same names, a new certificate: written as a deployment tool would (new files, renamed in).
            issue_server_cert(pki, tmp_path / "new.pem", tmp_path / "new.key", common_name="roiclass-rotated")
            (tmp_path / "new.key").replace(key)
            (tmp_path / "new.pem").replace(cert)
            assert _served_common_name(port, pki.ca) == "roiclass-rotated"
            assert _served_common_name(srv.app.metrics_port, pki.ca, "http/1.1") == "roiclass-rotated"
            with Classifier(srv.address, tls=TlsConfig(ca=pki.ca)) as after:
                assert len(after.classify(image(), rois=ROI).results) == 1
            # The stream opened before the rotation goes on over its old connection.
            for i in range(1, 4):
                frames.put(i)
                item = next(stream)
                assert item.ok and item.request_id == str(i)
            frames.close()
            assert list(stream) == []
            assert len(before.classify(image(), rois=ROI).results) == 1
    finally:
        srv.stop()


def test_a_broken_rotation_keeps_the_old_certificate(pki, repo, tmp_path, caplog):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    srv = start_server(repo, tls_security(pki, tls_cert=cert, tls_key=key))
    try:
        shutil.copy(pki.client_key, key)  # a key that does not match the certificate
        with caplog.at_level("WARNING", logger="roiclass.server.security.tls"):
            assert _served_common_name(srv.app.port, pki.ca) == "roiclass-server"
        assert "not usable" in caplog.text
        with Classifier(srv.address, tls=TlsConfig(ca=pki.ca)) as classifier:
            assert classifier.list_models().default_model == "tiny"
    finally:
        srv.stop()


class _FrameFeed:
    """Frames handed to a stream one at a time, so the test decides when each goes."""

    def __init__(self):
        import queue

        self._queue = queue.Queue()

    def put(self, i: int) -> None:
        self._queue.put(Frame(image(), rois=ROI, request_id=str(i)))

    def close(self) -> None:
        self._queue.put(None)

    def __iter__(self):
        while (item := self._queue.get()) is not None:
            yield item
