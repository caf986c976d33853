"""`roiclass serve --workers 2 --http-port 0`: the parent reserves one REST port and both
worker processes serve it (SO_REUSEPORT), as they share the gRPC port; SIGTERM stops all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import numpy as np

from tests.conftest import png_bytes
from tests.integration.test_workers import CHANNELS, _free_port, _scrape, _wait_log
from tests.unit.engine.conftest import make_onnx


def test_two_workers_share_the_rest_port(tmp_path):
    model = make_onnx(tmp_path / "tiny.onnx")
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roiclass.server.cli", "--workers", "2", "--port", str(_free_port()),
             "--http-port", "0", "--onnx", str(model), "--metrics-port", "0", "--grace", "5"], stderr=log)
    try:
        http_port = int(_wait_log(log_path, r"REST API on 127\.0\.0\.1:(\d+) \(the workers share it")[0].group(1))
        _wait_log(log_path, r"\[worker \d\]: model tiny version 1: READY", count=2)
        metrics_port = int(_wait_log(log_path, r"metrics of all workers on http://127.0.0.1:(\d+)")[0].group(1))
        assert len(_wait_log(log_path, rf"\[worker \d\]: REST API .* on http://127.0.0.1:{http_port}", count=2)) == 2
        png = png_bytes(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
        for _ in range(CHANNELS):  # a new connection each (no client pool): the kernel spreads them
            reply = httpx.post(f"http://127.0.0.1:{http_port}/v1/classify", content=png, timeout=30)
            assert reply.status_code == 200, reply.text
        ok = _scrape(metrics_port)["roiclass_requests_total"]
        assert set(ok) == {"0", "1"} and all(v > 0 for v in ok.values()), ok  # both workers answered
        assert sum(ok.values()) == CHANNELS
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
