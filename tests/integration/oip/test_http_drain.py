"""Shutdown with the REST API: while the server drains, ready says false, new requests get
503, live stays 200, and a request in flight finishes (as gRPC calls do, test_shutdown.py)."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from tests.conftest import png_bytes
from tests.integration.oip.http_helpers import base_url, start

ROIS = 256  # work that stays in flight while the test looks (~1 s on 2 idle cores)


def test_a_drain_refuses_new_requests_and_finishes_the_running_one():
    srv = start()
    stopper = None
    try:
        url = base_url(srv)
        png = png_bytes(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
        rois = [{"rect": {"origin": {"x": i % 200, "y": i % 150}, "width": 50, "height": 50, "angle": i % 60}}
                for i in range(ROIS)]
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(httpx.post, f"{url}/v1/classify", timeout=120, files={
                "image": ("a.png", png), "request": (None, json.dumps({"rois": rois, "top_k": 1}))})
            _wait(lambda: srv.app.drain.in_flight == 1)  # the big request is in flight
            stopper = threading.Thread(target=srv.stop, kwargs={"grace": 60})
            stopper.start()
            _wait(lambda: srv.app.drain.draining)
            assert not slow.done(), "the slow request ended before the drain began: make it bigger"
            with httpx.Client(base_url=url, timeout=10) as fresh:
                assert fresh.get("/v2/health/live").status_code == 200
                assert fresh.get("/v2/health/ready").status_code == 400
                reply = fresh.post("/v1/classify", content=png)
                assert reply.status_code == 503 and "shutting down" in reply.json()["error"]
            reply = slow.result()
            assert reply.status_code == 200, reply.text
            assert len(reply.json()["results"]) == ROIS
    finally:
        if stopper is None:
            srv.stop()
        else:
            stopper.join(60)


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
