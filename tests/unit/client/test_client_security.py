"""TlsConfig and the token's metadata: checked when the client is made, naming the argument."""
from __future__ import annotations

import grpc
import pytest

from roiclass.client import AsyncClassifier, Classifier, InvalidInputError, TlsConfig
from roiclass.client.security import tls_config, token_metadata


def test_the_token_goes_as_bearer_metadata():
    assert token_metadata("abc") == (("authorization", "Bearer abc"),)
    assert token_metadata(None) == ()


@pytest.mark.parametrize("token", ["", "a b", "a\nb", 5])
def test_a_bad_token_is_refused_without_echoing_it(token):
    with pytest.raises(InvalidInputError) as info:
        Classifier("127.0.0.1:1", token=token)
    assert info.value.details[0].field == "token"
    assert str(token) not in info.value.message or token == ""


def test_tls_true_means_the_system_cas_and_false_plaintext():
    assert tls_config(True) == TlsConfig()
    assert tls_config(False) is None and tls_config(None) is None


def test_tls_of_a_wrong_type():
    with pytest.raises(InvalidInputError, match="tls: must be a TlsConfig"):
        Classifier("127.0.0.1:1", tls="ca.pem")


def test_tls_and_credentials_are_one_or_the_other():
    with pytest.raises(InvalidInputError, match="tls or credentials"):
        Classifier("127.0.0.1:1", tls=True, credentials=grpc.ssl_channel_credentials())


def test_an_unreadable_file_names_its_field(tmp_path):
    with pytest.raises(InvalidInputError, match=r"tls.key: cannot read") as info:
        TlsConfig(cert=b"pem", key=tmp_path / "missing.key").credentials()
    assert info.value.details[0].field == "tls.key"


def test_server_name_becomes_the_target_name_override():
    assert TlsConfig(server_name="roiclass.internal").options() == [
        ("grpc.ssl_target_name_override", "roiclass.internal")]
    assert TlsConfig().options() == []


def test_the_async_client_takes_the_same_arguments():
    with pytest.raises(InvalidInputError, match="cert and key go together"):
        AsyncClassifier("127.0.0.1:1", tls=TlsConfig(cert=b"x"))


@pytest.mark.parametrize("address,warned", [
    ("127.0.0.1:50051", False), ("localhost:50051", False), ("[::1]:50051", False),
    ("10.0.0.5:50051", True), ("roiclass.internal:50051", True),
])
def test_a_token_in_plaintext_off_loopback_warns(caplog, address, warned):
    with caplog.at_level("WARNING", logger="roiclass.client.security"):
        Classifier(address, token="t0ken-for-the-test").close()
    assert ("in plaintext" in caplog.text) == warned
    assert "t0ken-for-the-test" not in caplog.text


def test_no_warning_over_tls(caplog):
    with caplog.at_level("WARNING", logger="roiclass.client.security"):
        Classifier("10.0.0.5:50051", tls=True, token="t0ken-for-the-test").close()
    assert "in plaintext" not in caplog.text
