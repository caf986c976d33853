"""Client-side health checking: a backend whose grpc.health.v1 status is
NOT_SERVING gets no calls from a balanced client, and gets them again once
SERVING (two in-process servers, a tiny real model)."""
from __future__ import annotations

import time

import pytest
from grpc_health.v1 import health_pb2

from roiclass.client import Classifier
from roiclass.server.security import SecurityConfig
from tests.integration.secure import image, start_server, tiny_repo

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    repo = tiny_repo(tmp_path_factory.mktemp("balanced"))
    servers = [start_server(repo, SecurityConfig()) for _ in range(2)]
    yield servers
    for srv in servers:
        srv.stop()


def _served(srv) -> float:
    return sum(sample.value for metric in srv.app.metrics.registry.collect() if metric.name == "roiclass_requests"
               for sample in metric.samples if sample.name == "roiclass_requests_total")


def _classify(client: Classifier, n: int) -> None:
    for _ in range(n):
        client.classify(image(), rois=[(0, 0, 32, 32)])


def _set_health(srv, status) -> None:
    srv.call(srv.app.health.set("", status))


def test_a_not_serving_backend_gets_no_calls_until_it_serves_again(two_servers):
    first, second = two_servers
    with Classifier([first.address, second.address], timeout=10) as client:
        client.wait_until_ready(10)
        _classify(client, 20)
        assert _served(first) > 0 and _served(second) > 0  # round robin: both
        _set_health(second, NOT_SERVING)
        time.sleep(0.5)  # the Watch stream tells the client
        before = _served(second)
        _classify(client, 30)
        assert _served(second) == before
        _set_health(second, SERVING)
        deadline = time.monotonic() + 5
        while _served(second) == before:
            assert time.monotonic() < deadline, "the backend got no calls after SERVING again"
            _classify(client, 2)


def test_without_health_checking_the_not_serving_backend_is_still_called(two_servers):
    # The control: the same channel with gRPC's health checking inhibited.
    first, second = two_servers
    with Classifier([first.address, second.address], timeout=10,
                    options=[("grpc.inhibit_health_checking", 1)]) as client:
        client.wait_until_ready(10)
        _set_health(second, NOT_SERVING)
        try:
            time.sleep(0.3)
            before = _served(second)
            _classify(client, 20)
            assert _served(second) > before
        finally:
            _set_health(second, SERVING)


def test_a_frame_error_is_a_result_and_never_reopens_the_stream(two_servers, caplog):
    from roiclass.client import Frame

    frames = [Frame(image(), [(0, 0, 32, 32)], request_id=f"f{i}") for i in range(6)]
    with Classifier([srv.address for srv in two_servers], timeout=10) as client:
        results = list(client.stream(frames[:3] + [Frame(image(), [(0, 0, 0, 5)], request_id="bad")] + frames[3:]))
        items = list(client.stream(iter(frames[:2]), model="no-such-model"))
    assert [r.request_id for r in results] == ["f0", "f1", "f2", "bad", "f3", "f4", "f5"]
    assert [r.ok for r in results] == [True] * 3 + [False] + [True] * 3
    assert [r.error.code.name for r in items] == ["NOT_FOUND", "NOT_FOUND"]  # the server's per-frame status
    assert not any("stream broke" in r.getMessage() for r in caplog.records)


def test_a_dns_target_balances_too(two_servers):
    port = two_servers[0].address.rsplit(":", 1)[1]
    with Classifier(f"dns:///localhost:{port}", timeout=10) as client:
        assert client.balanced
        assert len(client.classify(image(), rois=[(0, 0, 32, 32)]).results) == 1


def test_several_tls_servers_with_a_token(tmp_path):
    from roiclass.client import TlsConfig
    from tests.certs import make_pki
    from tests.integration.secure import CLASSIFY_TOKEN, tls_security, token_file

    pki = make_pki(tmp_path / "pki")
    security = tls_security(pki, auth_tokens=token_file(tmp_path))
    repo = tiny_repo(tmp_path)
    servers = [start_server(repo, security) for _ in range(2)]
    try:
        targets = [srv.address for srv in servers]
        with Classifier(targets, tls=TlsConfig(ca=pki.ca), token=CLASSIFY_TOKEN, timeout=10) as client:
            for _ in range(6):
                client.classify(image(), rois=[(0, 0, 32, 32)])
            assert [r.ok for r in client.stream([image()] * 3)] == [True] * 3
        assert all(_served(srv) > 0 for srv in servers)  # both got calls, over TLS with the token
    finally:
        for srv in servers:
            srv.stop()
