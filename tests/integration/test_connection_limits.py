"""Fair sharing seen over gRPC: the per-client cap on ROIs in flight answers
RESOURCE_EXHAUSTED naming the flag, and the per-connection limits reach the
server (concurrent streams, keepalive enforcement, connection age)."""
from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.connections import ConnectionLimits
from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request, roi
from tests.unit.models.model_factory import make_classifier

CAP = 8
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # else channels share one


def _start(tmp_path_factory, connections: ConnectionLimits, **engine) -> BackgroundServer:
    repo = tmp_path_factory.mktemp("repo")
    make_classifier(repo / "tiny" / "1" / "model.onnx", num_classes=4, height=32, width=32)
    (repo / "tiny" / "config.toml").write_text('classes = ["a", "b", "c", "d"]\n')
    config = ServerConfig(port=0, repositories=(repo,), connections=connections,
                          engine=EngineConfig(devices="cpu", cpu_batch_cap=0, **engine))
    return BackgroundServer(config).start()


@pytest.fixture(scope="module")
def one_stream_server(tmp_path_factory):
    srv = _start(tmp_path_factory, ConnectionLimits(max_concurrent_streams=1),
                 max_inflight_rois_per_client=CAP)
    yield srv
    srv.stop()


def _classify(channel, n: int, timeout: float = 10.0):
    image = raw_image(np.full((64, 64, 3), 128, np.uint8))
    rois = [roi(10 + i, 10, 20, 20) for i in range(n)]
    return classifier_pb2_grpc.ObjectClassifierStub(channel).ClassifyObject(
        request(image, rois), timeout=timeout)


def _check(channel, timeout: float):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)


def test_more_rois_in_flight_than_the_client_cap_is_resource_exhausted(one_stream_server):
    with grpc.insecure_channel(one_stream_server.address) as ch:
        assert len(_classify(ch, CAP).results) == CAP
        with pytest.raises(grpc.RpcError) as exc:
            _classify(ch, CAP + 1)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-inflight-rois-per-client" in exc.value.details()
        assert f"={CAP}" in exc.value.details()
        assert len(_classify(ch, 1).results) == 1  # the server goes on


def test_calls_past_max_concurrent_streams_wait_for_a_free_stream(one_stream_server):
    address = one_stream_server.address
    with grpc.insecure_channel(address, OWN_CONNECTION) as ch, \
            grpc.insecure_channel(address, OWN_CONNECTION) as other:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        next(watch)  # the stream is open and holds the connection's only slot
        with pytest.raises(grpc.RpcError) as exc:
            _check(ch, timeout=0.5)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert _check(other, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        assert _check(ch, timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_a_connection_past_its_max_age_and_grace_is_closed(tmp_path_factory):
    srv = _start(tmp_path_factory, ConnectionLimits(max_connection_age_s=0.3,
                                                    max_connection_age_grace_s=0.3))
    try:
        with grpc.insecure_channel(srv.address, OWN_CONNECTION) as ch:
            t0 = time.monotonic()
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=10)
            next(watch)
            with pytest.raises(grpc.RpcError) as exc:
                next(watch)  # no change of status: only the age can end it
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - t0 < 5
            assert _check(ch, timeout=5).status == health_pb2.HealthCheckResponse.SERVING  # reconnects
    finally:
        srv.stop()


def test_a_client_pinging_more_often_than_allowed_is_disconnected(one_stream_server):
    # The server allows a ping without data every 10 s (the default); this client pings every 0.1 s.
    pinger = OWN_CONNECTION + [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 1000),
                               ("grpc.http2.max_pings_without_data", 0)]
    with grpc.insecure_channel(one_stream_server.address, pinger) as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=15)
        next(watch)
        with pytest.raises(grpc.RpcError) as exc:
            next(watch)  # no change of status: only the server's GOAWAY can end it early
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "too many pings" in exc.value.details().lower()


def test_server_options_from_the_limits():
    opts = dict(ConnectionLimits(max_concurrent_streams=4, keepalive_time_s=30,
                                 min_client_ping_interval_s=5, permit_keepalive_without_calls=True,
                                 max_connection_age_s=600, max_connection_age_grace_s=60).grpc_options())
    assert opts == {"grpc.max_concurrent_streams": 4, "grpc.keepalive_time_ms": 30_000,
                    "grpc.keepalive_timeout_ms": 20_000,
                    "grpc.http2.min_ping_interval_without_data_ms": 5_000,
                    "grpc.keepalive_permit_without_calls": 1,
                    "grpc.max_connection_age_ms": 600_000, "grpc.max_connection_age_grace_ms": 60_000}
    defaults = dict(ConnectionLimits().grpc_options())
    assert "grpc.max_connection_age_ms" not in defaults and defaults["grpc.max_concurrent_streams"] == 128
