"""`roiclass serve` security flags -> SecurityConfig; bad files stop the start with one line."""
from __future__ import annotations

import shutil

import pytest

from roiclass.server.cli import build_parser, config_from_args
from roiclass.server.security import SecurityConfig
from roiclass.server.security.tls import CertificateFiles
from tests.certs import issue_server_cert, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _config(*argv: str):
    parser = build_parser()
    return config_from_args(parser.parse_args(list(argv)), parser)


def _error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        _config(*argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_defaults_are_plaintext_no_tokens_reflection_on_metrics_on_loopback():
    config = _config()
    assert config.security == SecurityConfig()
    assert config.security.reflection and not config.security.tls
    assert config.metrics_host == "127.0.0.1"


def test_flags_reach_the_config(pki, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("0123456789abcdef0123 classify,admin\n")
    config = _config("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                     "--tls-client-ca", str(pki.ca), "--tls-require-client-cert", "--auth-tokens", str(tokens),
                     "--no-reflection", "--metrics-host", "0.0.0.0")
    s = config.security
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == (pki.server_cert, pki.server_key, pki.ca)
    assert s.require_client_cert and s.auth_tokens == tokens and not s.reflection
    assert config.metrics_host == "0.0.0.0"


def test_a_malformed_token_file_names_file_and_line(capsys, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# ok\n0123456789abcdef0123 classify\n0123456789abcdef0124 superuser\n")
    line = _error(capsys, "--auth-tokens", str(tokens))
    assert f"{tokens}:3: unknown scope 'superuser'" in line
    assert "0123456789abcdef0124" not in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
    (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert and --tls-key"),
    (["--tls-require-client-cert"], "--tls-require-client-cert needs --tls-client-ca"),
])
def test_flags_that_do_not_go_together(capsys, argv, words):
    assert words in _error(capsys, *argv)


def test_a_client_ca_without_requiring_client_certs_is_refused(capsys, pki):
    # gRPC would not verify an optional client certificate: any would pass.
    line = _error(capsys, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                  "--tls-client-ca", str(pki.ca))
    assert "--tls-client-ca needs --tls-require-client-cert" in line


def test_a_key_that_does_not_match_the_certificate(capsys, pki):
    line = _error(capsys, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key))
    assert "not a usable PEM pair" in line and str(pki.server_cert) in line


def test_a_missing_certificate_file(capsys, pki, tmp_path):
    line = _error(capsys, "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pki.server_key))
    assert "nope.pem" in line


def test_certificate_files_reload_on_change_or_when_forced(pki, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    files = CertificateFiles(SecurityConfig(tls_cert=cert, tls_key=key))
    assert files.generation == 1 and not files.changed()
    files.force_reload()  # SIGHUP: re-read although nothing changed on disk
    assert files.changed() and files.generation == 2 and not files.changed()
    issue_server_cert(pki, tmp_path / "n.pem", tmp_path / "n.key")
    (tmp_path / "n.key").replace(key)
    (tmp_path / "n.pem").replace(cert)
    assert files.changed() and files.current.cert == cert.read_bytes()
