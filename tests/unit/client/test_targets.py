"""Several targets -> one channel target and its service config (client/targets.py);
the re-open budget of a broken stream (client/resume.py)."""
from __future__ import annotations

import json

import grpc
import pytest

from roiclass.client import Classifier, ClassifierError, InvalidInputError
from roiclass.client.cli import build_parser
from roiclass.client.resume import MAX_REOPENS, Reopens
from roiclass.client.targets import MAX_ATTEMPTS, SERVICE, parse_targets


def _config(target) -> dict:
    return json.loads(dict(target.options)["grpc.service_config"])


def test_one_plain_target_is_left_alone():
    target = parse_targets("127.0.0.1:50051")
    assert (target.uri, target.options, target.balanced) == ("127.0.0.1:50051", (), False)


@pytest.mark.parametrize("address", ["127.0.0.1:1,127.0.0.2:2", ["127.0.0.1:1", "127.0.0.2:2"]])
def test_several_ipv4_targets_are_one_static_channel(address):
    target = parse_targets(address)
    assert target.uri == "ipv4:127.0.0.1:1,127.0.0.2:2" and target.balanced
    assert dict(target.options)["grpc.default_authority"] == "127.0.0.1:1"  # what TLS checks


def test_ipv6_and_names():
    assert parse_targets(["[::1]:1", "[::1]:2"]).uri == "ipv6:[::1]:1,[::1]:2"
    target = parse_targets("localhost:7,127.0.0.1:8")
    assert target.uri.startswith("ipv") and target.uri.endswith(":8")
    # TLS checks the first target's name, not an IP
    assert dict(target.options)["grpc.default_authority"] == "localhost:7"


def test_service_config_balances_checks_health_and_retries_unavailable():
    for address in ("dns:///roiclass.default.svc:50051", "127.0.0.1:1,127.0.0.1:2"):
        target = parse_targets(address)
        config = _config(target)
        assert config["loadBalancingConfig"] == [{"round_robin": {}}]
        assert config["healthCheckConfig"] == {"serviceName": ""}
        (method,) = config["methodConfig"]
        assert method["name"] == [{"service": SERVICE}]
        policy = method["retryPolicy"]
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE"] and policy["maxAttempts"] == MAX_ATTEMPTS <= 5
        assert dict(target.options)["grpc.enable_retries"] == 1


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1:1,", "empty target"),
        ("127.0.0.1:1,127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:1,127.0.0.1:70000", "port 1..65535"),
        ("127.0.0.1:1,[::1]:2", "all IPv4 or all IPv6"),
        ("127.0.0.1:1,dns:///x:1", "plain HOST:PORT"),
        ([], "HOST:PORT"),
    ],
)
def test_bad_targets_name_the_address(address, words):
    with pytest.raises(InvalidInputError) as info:
        Classifier(address)
    assert info.value.details[0].field == "address" and words in info.value.message


def test_the_cli_passes_several_servers():
    args = build_parser().parse_args(["models", "--server", "127.0.0.1:1,127.0.0.1:2"])
    with Classifier(args.server) as client:
        assert client.balanced and client.address == "127.0.0.1:1,127.0.0.1:2"


def _unavailable() -> ClassifierError:
    return ClassifierError(grpc.StatusCode.UNAVAILABLE, "Socket closed")


def test_reopens_are_bounded_in_a_row_and_backoff_grows():
    reopens = Reopens(None)
    backoffs = [reopens.next_backoff(_unavailable()) for _ in range(MAX_REOPENS)]
    assert backoffs == sorted(backoffs) and backoffs[0] < backoffs[-1] <= 1.0
    with pytest.raises(ClassifierError):
        reopens.next_backoff(_unavailable())
    reopens.answered()  # an answer in between: the budget is back
    assert reopens.next_backoff(_unavailable()) == backoffs[0]


def test_only_unavailable_reopens_and_the_deadline_counts():
    error = ClassifierError(grpc.StatusCode.INVALID_ARGUMENT, "bad")
    with pytest.raises(ClassifierError) as info:
        Reopens(None).next_backoff(error)
    assert info.value is error
    with pytest.raises(ClassifierError):
        Reopens(0.01).next_backoff(_unavailable())  # no time left for the backoff
