"""The `roiclass` command over TLS with a token, and `roiclass serve` with the security flags."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from roiclass.client import Classifier, TlsConfig
from roiclass.client.cli import main
from tests.certs import make_pki
from tests.integration.secure import ADMIN_TOKEN, CLASSIFY_TOKEN, start_server, tiny_repo, tls_security, token_file


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("secure-cli")


@pytest.fixture(scope="module")
def mtls_server(pki, folder):
    security = tls_security(pki, tls_client_ca=pki.ca, require_client_cert=True, auth_tokens=token_file(folder))
    srv = start_server(tiny_repo(folder), security)
    yield srv
    srv.stop()


def _mtls_flags(pki, server) -> list[str]:
    return ["--server", server.address, "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
            "--tls-key", str(pki.client_key)]


def test_models_over_mtls_with_a_token(mtls_server, pki, capsys, monkeypatch):
    monkeypatch.delenv("ROICLASS_TOKEN", raising=False)
    assert main(["models", *_mtls_flags(pki, mtls_server), "--token", CLASSIFY_TOKEN]) == 0
    assert "tiny" in capsys.readouterr().out


def test_the_token_from_the_environment(mtls_server, pki, capsys, monkeypatch):
    monkeypatch.setenv("ROICLASS_TOKEN", CLASSIFY_TOKEN)
    assert main(["models", *_mtls_flags(pki, mtls_server)]) == 0
    monkeypatch.setenv("ROICLASS_TOKEN", ADMIN_TOKEN)  # --token wins over the environment
    assert main(["models", *_mtls_flags(pki, mtls_server), "--token", CLASSIFY_TOKEN]) == 0


def test_without_a_token_the_cli_says_unauthenticated(mtls_server, pki, capsys, monkeypatch):
    monkeypatch.delenv("ROICLASS_TOKEN", raising=False)
    assert main(["models", *_mtls_flags(pki, mtls_server)]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_health_needs_no_token(mtls_server, pki, monkeypatch):
    monkeypatch.delenv("ROICLASS_TOKEN", raising=False)
    assert main(["health", *_mtls_flags(pki, mtls_server)]) == 0


def test_without_the_client_certificate_the_cli_says_unavailable(mtls_server, pki, capsys):
    argv = ["models", "--server", mtls_server.address, "--tls-ca", str(pki.ca), "--token", CLASSIFY_TOKEN,
            "--timeout", "5"]
    assert main(argv) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_tls_cert_without_key_is_a_usage_error(capsys, pki):
    with pytest.raises(SystemExit) as info:
        main(["models", "--tls-cert", str(pki.client_cert)])
    assert info.value.code == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


def test_a_missing_ca_file_is_a_usage_error(capsys, tmp_path):
    assert main(["models", "--tls-ca", str(tmp_path / "none.pem")]) == 2
    assert "tls.ca" in capsys.readouterr().err


def test_serve_with_tls_and_tokens_reloads_on_sighup(pki, tmp_path):
    repo = tiny_repo(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roiclass.server.cli", "--port", "0", "--devices", "cpu",
         "--models", str(repo), "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
         "--auth-tokens", str(token_file(tmp_path)), "--log-level", "INFO"],
        stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        address = _wait_ready(proc, lines)
        assert "(TLS, token auth on: 4 tokens, reflection on)" in "".join(lines)
        os.kill(proc.pid, signal.SIGHUP)
        _wait_for(lines, "token file re-read: 4 tokens")  # the handler ran; the TLS files follow at a handshake
        with Classifier(address, tls=TlsConfig(ca=pki.ca), token=CLASSIFY_TOKEN) as classifier:
            assert classifier.list_models().default_model == "tiny"
        _wait_for(lines, "TLS certificate re-read")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    text = "".join(lines)
    for token in (CLASSIFY_TOKEN, ADMIN_TOKEN):
        assert token not in text


def _wait_ready(proc, lines: list[str]) -> str:
    deadline = time.monotonic() + 120
    address = None
    for line in proc.stderr:
        lines.append(line)
        match = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if match:
            address = match.group(1)
        if "model tiny version 1: READY" in line:
            break
        assert time.monotonic() < deadline, "server did not become ready"
    assert address, "".join(lines)
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    return address


def _wait_for(lines: list[str], words: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(words in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)
