"""The REST API with tokens (the gRPC scopes: 401 / 403 / 200), over TLS (the same
certificate files, rotated without a restart) and mutual TLS; repository load/unload
needs `admin` and changes readiness. A tiny model on CPU (tests/integration/secure.py)."""
from __future__ import annotations

import shutil
import socket
import ssl

import httpx
import numpy as np
import pytest

from roiclass.server.security import SecurityConfig
from tests.certs import common_name, issue_server_cert, make_pki
from tests.conftest import png_bytes
from tests.integration.secure import (
    ADMIN_TOKEN, CLASSIFY_TOKEN, METRICS_TOKEN, image, start_server, tiny_repo, tls_security, token_file,
)

WRONG_TOKEN = "tok-wrong-0123456789abcdef"
INFER = {"inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [8, 8, 3], "data": [7] * 192}]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("http-security")


@pytest.fixture(scope="module")
def pki(folder):
    return make_pki(folder / "pki")


@pytest.fixture(scope="module")
def repo(folder):
    return tiny_repo(folder)


@pytest.fixture(scope="module")
def token_server(folder, repo):
    srv = start_server(repo, SecurityConfig(auth_tokens=token_file(folder)), http_port=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(token_server):
    with httpx.Client(base_url=f"http://127.0.0.1:{token_server.app.http_port}", timeout=30) as client:
        yield client


def _auth(token: str | None) -> dict:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def test_probes_need_no_token(http):
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/models/tiny/ready").status_code == 200


@pytest.mark.parametrize("token", [None, WRONG_TOKEN])
def test_a_missing_or_unknown_token_is_401(http, token):
    for reply in (http.post("/v2/models/tiny/infer", json=INFER, headers=_auth(token)),
                  http.get("/v2", headers=_auth(token)),
                  http.post("/v1/classify", content=png_bytes(image()), headers=_auth(token))):
        assert reply.status_code == 401, reply.text
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        message = reply.json()["error"]
        assert "token" in message and (token is None or token not in message)  # never echoes the token
        if token is None:  # says how, in HTTP's words too
            assert "HTTP Authorization header" in message, message


def test_a_token_without_the_scope_is_403_naming_it(http):
    reply = http.post("/v2/models/tiny/infer", json=INFER, headers=_auth(METRICS_TOKEN))
    assert reply.status_code == 403 and "'classify'" in reply.json()["error"]
    reply = http.post("/v2/repository/models/tiny/unload", headers=_auth(CLASSIFY_TOKEN))
    assert reply.status_code == 403 and "'admin'" in reply.json()["error"]


def test_a_classify_token_infers_and_classifies(http):
    reply = http.post("/v2/models/tiny/infer", json=INFER, headers=_auth(CLASSIFY_TOKEN))
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["shape"] == [1, 4]
    reply = http.post("/v1/classify", content=png_bytes(image()), headers=_auth(CLASSIFY_TOKEN))
    assert reply.status_code == 200 and reply.json()["model"] == "tiny"


def test_unload_and_load_change_readiness(http):
    admin = _auth(ADMIN_TOKEN)
    assert http.post("/v2/repository/models/tiny/unload", headers=admin).status_code == 200
    try:
        assert http.get("/v2/models/tiny/ready").status_code == 400
        (entry,) = http.post("/v2/repository/index", headers=_auth(CLASSIFY_TOKEN)).json()
        assert entry["name"] == "tiny" and entry["state"] != "READY"
        reply = http.post("/v2/models/tiny/infer", json=INFER, headers=_auth(CLASSIFY_TOKEN))
        assert reply.status_code in (404, 503), reply.text  # NOT_FOUND / UNAVAILABLE: no version loaded
    finally:
        assert http.post("/v2/repository/models/tiny/load", headers=admin).status_code == 200
    assert http.get("/v2/models/tiny/ready").status_code == 200
    assert http.post("/v2/repository/models/nope/load", headers=admin).status_code == 404


# -- TLS --------------------------------------------------------------------
def _served_common_name(port: int, ca, server_name: str) -> str:
    """The CN a new connection gets; to an IP address a client sends no SNI (the rotation hook
    must run without it)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return common_name(ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)).encode())


def test_tls_with_the_servers_certificate_files_rotated_without_restart(pki, repo, tmp_path):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    srv = start_server(repo, tls_security(pki, tls_cert=cert, tls_key=key), http_port=0)
    try:
        port = srv.app.http_port
        with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=30) as client:
            reply = client.post(f"https://localhost:{port}/v2/models/tiny/infer", json=INFER)
            assert reply.status_code == 200, reply.text
        with pytest.raises(httpx.HTTPError):  # plaintext to the TLS port
            httpx.get(f"http://127.0.0.1:{port}/v2", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a CA that did not sign it
            httpx.get(f"https://localhost:{port}/v2", timeout=5,
                      verify=ssl.create_default_context(cafile=str(pki.other_ca)))
        assert _served_common_name(port, pki.ca, "localhost") == "roiclass-server"
        issue_server_cert(pki, tmp_path / "new.pem", tmp_path / "new.key", common_name="roiclass-rotated")
        (tmp_path / "new.key").replace(key)
        (tmp_path / "new.pem").replace(cert)
        assert _served_common_name(port, pki.ca, "127.0.0.1") == "roiclass-rotated"  # no SNI: still rotated
        assert _served_common_name(port, pki.ca, "localhost") == "roiclass-rotated"
    finally:
        srv.stop()


def test_mutual_tls_needs_a_client_certificate(pki, repo):
    srv = start_server(repo, tls_security(pki, tls_client_ca=pki.ca, require_client_cert=True), http_port=0)
    try:
        url = f"https://localhost:{srv.app.http_port}/v2/models/tiny/infer"
        with_cert = ssl.create_default_context(cafile=str(pki.ca))
        with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        reply = httpx.post(url, json=INFER, verify=with_cert, timeout=30)
        assert reply.status_code == 200, reply.text
        assert np.asarray(reply.json()["outputs"][0]["data"]).shape == (4,)
        for ctx in (ssl.create_default_context(cafile=str(pki.ca)), _other_client(pki)):
            with pytest.raises(httpx.HTTPError):
                httpx.post(url, json=INFER, verify=ctx, timeout=10)
    finally:
        srv.stop()


def _other_client(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.other_client_cert), str(pki.other_client_key))  # signed by the other CA
    return ctx


def test_a_token_removed_from_the_file_is_refused_after_sighup(repo, tmp_path):
    tokens = token_file(tmp_path)
    srv = start_server(repo, SecurityConfig(auth_tokens=tokens), http_port=0)
    try:
        url = f"http://127.0.0.1:{srv.app.http_port}/v2/models/tiny/infer"
        assert httpx.post(url, json=INFER, headers=_auth(CLASSIFY_TOKEN), timeout=30).status_code == 200
        tokens.write_text(f"{ADMIN_TOKEN} admin\n")
        srv.app.reload_security()  # what SIGHUP runs
        assert httpx.post(url, json=INFER, headers=_auth(CLASSIFY_TOKEN), timeout=30).status_code == 401
    finally:
        srv.stop()
