"""Fair sharing over gRPC: a heavy client (one connection, 8 calls of 256 ROIs
in flight) and a light client (another connection, one 1-ROI call at a time)
on a small but slow model: the light client's p99 stays within 3x its
unloaded p99 plus one batch time (issue #17)."""
from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request, roi
from tests.unit.engine.conftest import make_onnx

MAX_BATCH = 16
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
IMAGE = raw_image(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8))
HEAVY = request(IMAGE, [roi(20 + i % 40, 30, 24, 16, i % 90) for i in range(256)], model="slow")
LIGHT = request(IMAGE, [roi(40, 40, 30, 20, 10)], model="slow")


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    make_onnx(repo / "slow" / "1" / "model.onnx", extra_matmuls=4)
    (repo / "slow" / "config.toml").write_text(
        'classes = ["a", "b", "c"]\n[batching]\n'
        f"max_batch_size = {MAX_BATCH}\nmax_queue_delay_us = 2000\nmax_queue_size = 65536\n")
    srv = BackgroundServer(ServerConfig(port=0, repositories=(repo,), engine=EngineConfig(
        devices="cpu", cpu_threads=1, cpu_batch_cap=0))).start()
    yield srv
    srv.stop()


class HeavyClient:
    """8 threads on one channel, each one call after the other."""

    def __init__(self, address: str, calls: int | None = None):
        self.channel = grpc.insecure_channel(address, OWN_CONNECTION)
        self.stub = classifier_pb2_grpc.ObjectClassifierStub(self.channel)
        self.left = calls
        self.stopping = False
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(8)]
        for t in self._threads:
            t.start()

    def _next(self) -> bool:
        with self._lock:
            if self.stopping or self.left == 0:
                return False
            if self.left is not None:
                self.left -= 1
            return True

    def _run(self) -> None:
        while self._next():
            try:
                self.stub.ClassifyObject(HEAVY, timeout=60)
            except grpc.RpcError as exc:
                self.failures.append(exc)

    def join(self, stop: bool = False) -> None:
        self.stopping = stop
        for t in self._threads:
            t.join(60)
        self.channel.close()
        assert not self.failures, self.failures[0]


def _light(stub, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        stub.ClassifyObject(LIGHT, timeout=30)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 99))


def test_a_light_client_beside_a_heavy_one_keeps_near_its_unloaded_latency(slow_server):
    engine = slow_server.app.engine
    with grpc.insecure_channel(slow_server.address, OWN_CONNECTION) as ch:
        light = classifier_pb2_grpc.ObjectClassifierStub(ch)
        _light(light, 20)  # warm
        tries = []
        for _ in range(3):  # a shared, noisy machine: the best of three counts
            unloaded = _light(light, 150)
            before = engine.counters("slow", "1")
            t0 = time.perf_counter()
            HeavyClient(slow_server.address, calls=24).join()
            elapsed = time.perf_counter() - t0
            after = engine.counters("slow", "1")
            batches = after["batches"] - before["batches"]
            assert (after["items"] - before["items"]) / batches >= 0.9 * MAX_BATCH  # alone: full
            batch_s = elapsed / batches
            heavy = HeavyClient(slow_server.address)
            time.sleep(0.1)
            loaded = _light(light, 150)
            saturated = slow_server.app.manager.resolve("slow").queue.depth > MAX_BATCH
            heavy.join(stop=True)
            assert saturated
            tries.append(f"light p99 {1e3 * loaded:.2f} ms beside the heavy client, "
                         f"{1e3 * unloaded:.2f} ms alone; one batch {1e3 * batch_s:.2f} ms")
            if loaded <= 3 * unloaded + batch_s:
                return
    pytest.fail("; ".join(tries))
