"""SIGTERM: health NOT_SERVING, new calls UNAVAILABLE, in-flight calls finish, exit 0."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request, roi


def _start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        # A long grace: the 1024-ROI call in flight must finish even on a busy machine.
        [sys.executable, "-m", "roiclass.server.cli", "--host", "127.0.0.1", "--port", "0", "--grace", "100"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 180
    address = None
    for line in proc.stderr:
        match = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if match:
            address = match.group(1)
        if "model efficientnet_lite0 version 1: READY" in line:
            break
        assert time.monotonic() < deadline, "server did not become ready"
    assert address, "server did not log its address"
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
    return proc, address


def test_sigterm_drains_then_exits_zero():
    proc, address = _start_server()
    try:
        with grpc.insecure_channel(address) as channel:
            stub = classifier_pb2_grpc.ObjectClassifierStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            image = raw_image(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
            slow = request(image, [roi(i % 200, i % 150, 50, 50, angle=i % 60) for i in range(1024)])
            future = stub.ClassifyObject.future(slow, timeout=120)
            time.sleep(0.5)  # the big call is in flight
            os.kill(proc.pid, signal.SIGTERM)
            time.sleep(0.3)
            status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            try:
                stub.ClassifyObject(request(image), timeout=10)
                raise AssertionError("a new call during the drain must fail")
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err
            response = future.result()
            assert len(response.results) == 1024
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
