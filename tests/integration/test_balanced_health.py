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
