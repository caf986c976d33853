"""Three replicas behind one load-balanced client: SIGKILL one under load and
nothing is lost; a fourth that comes up in a listed slot gets traffic within
seconds; the replicas that stay never see an error.

Real server processes (`python -m roiclass.server.cli`) on loopback, a tiny
real ONNX model, the client's own round_robin + health checking + retry
policy (client/targets.py) and stream resumption (client/resume.py).
"""
from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from roiclass.client import AsyncClassifier, Classifier, Frame
from tests.integration.secure import tiny_repo

UNARY_THREADS = 16
STREAMS = 4
# On their own asyncio channel, one per live replica: round robin puts one on the replica that dies.
ASYNC_STREAMS = 3
FRAME_GAP_S = 0.02
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_REQUESTS = re.compile(r'^roiclass_requests_total\{([^}]*)\} ([\d.e+]+)$', re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One `roiclass serve` process on a given port, with /metrics."""

    def __init__(self, model: Path, port: int, log: Path) -> None:
        self.port = port
        self.metrics_port = _free_port()
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roiclass.server.cli", "--port", str(port), "--model", str(model),
             "--devices", "cpu", "--metrics-port", str(self.metrics_port), "--grace", "1"],
            stdout=self._out, stderr=subprocess.STDOUT,
        )

    def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not _LISTENING.search(self.log.read_text()) or "version 1: READY" not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.05)

    def requests(self) -> dict[str, float]:
        """roiclass_requests_total by code."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        counts: dict[str, float] = {}
        for labels, value in _REQUESTS.findall(text):
            code = re.search(r'code="(\w+)"', labels).group(1)
            counts[code] = counts.get(code, 0.0) + float(value)
        return counts

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


class Load:
    """Unary calls on UNARY_THREADS threads and STREAMS streams until stop()."""

    def __init__(self, client: Classifier, targets: list[str], image: np.ndarray) -> None:
        self.client, self.targets, self.image = client, targets, image
        self.done = threading.Event()
        self.async_started = threading.Event()
        self.unary_ok = 0
        self.failures: list[BaseException] = []
        self.sent: dict[int, list[str]] = {}
        self.received: dict[int, list[str]] = {}
        self.frame_errors: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._unary, daemon=True) for _ in range(UNARY_THREADS)]
        self.threads += [threading.Thread(target=self._stream, args=(i,), daemon=True) for i in range(STREAMS)]
        self.threads.append(threading.Thread(target=lambda: asyncio.run(self._async_streams()), daemon=True))

    def start(self) -> "Load":
        # Streams first: round robin's first picks put one on every replica (the unary calls would mix in).
        for thread in self.threads[UNARY_THREADS:]:
            thread.start()
        time.sleep(0.3)
        for thread in self.threads[:UNARY_THREADS]:
            thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive(), "a client thread hangs"

    def _unary(self) -> None:
        while not self.done.is_set():
            try:
                result = self.client.classify(self.image, rois=[(4, 4, 32, 32, 15.0)], timeout=10)
                assert len(result.results) == 1
                with self._lock:
                    self.unary_ok += 1
            except BaseException as error:  # every call must return a result
                logging.getLogger(__name__).exception("a unary call failed")
                self.failures.append(error)
                return

    def _frames(self, stream: int, gap_s: float = FRAME_GAP_S):
        sent = self.sent.setdefault(stream, [])
        n = 0
        while not self.done.is_set():
            request_id = f"s{stream}-{n}"
            sent.append(request_id)
            yield Frame(self.image, [(0, 0, 32, 32)], request_id=request_id)
            n += 1
            time.sleep(gap_s)

    def _stream(self, stream: int) -> None:
        received = self.received.setdefault(stream, [])
        try:
            for item in self.client.stream(self._frames(stream), timeout=60):
                received.append(item.request_id)
                if not item.ok:
                    self.frame_errors.append(f"{item.request_id}: {item.error}")
        except BaseException as error:
            import traceback; traceback.print_exc()
            self.failures.append(error)


    async def _async_streams(self) -> None:
        async with AsyncClassifier(self.targets, timeout=10) as client:
            await client.wait_until_ready(10)
            await asyncio.sleep(0.5)  # every live replica connected (see the sync client's)
            self.async_started.set()
            await asyncio.gather(*(self._async_stream(client, STREAMS + i) for i in range(ASYNC_STREAMS)))

    async def _async_frames(self, stream: int):
        for frame in self._frames(stream, gap_s=0):
            yield frame
            await asyncio.sleep(FRAME_GAP_S)  # not time.sleep: the event loop carries three streams

    async def _async_stream(self, client: AsyncClassifier, stream: int) -> None:
        received = self.received.setdefault(stream, [])
        try:
            async for item in client.stream(self._async_frames(stream), timeout=60):
                received.append(item.request_id)
                if not item.ok:
                    self.frame_errors.append(f"{item.request_id}: {item.error}")
        except BaseException as error:
            import traceback; traceback.print_exc()
            self.failures.append(error)


def _wait(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, what
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def replicas(tmp_path):
    model = tiny_repo(tmp_path) / "tiny"
    ports = [_free_port() for _ in range(4)]
    started: list[Replica] = []

    def start(i: int) -> Replica:
        replica = Replica(model, ports[i], tmp_path / f"replica-{i}.log")
        started.append(replica)
        return replica

    yield ports, start
    for replica in started:
        replica.stop()


def test_a_replica_killed_under_load_loses_nothing_and_a_new_one_gets_traffic(replicas, caplog):
    ports, start = replicas
    first = [start(i) for i in range(3)]
    for replica in first:
        replica.wait_serving()
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    caplog.set_level(logging.WARNING, logger="roiclass.client")
    # The fourth slot is listed but empty: a replica that comes up there is balanced onto.
    targets = [f"127.0.0.1:{port}" for port in ports]
    with Classifier(targets, timeout=10) as client:
        client.wait_until_ready(10)
        time.sleep(0.5)  # every live replica connected, so the streams spread over all three
        load = Load(client, targets, image).start()
        try:
            _wait(lambda: load.unary_ok > 100 and load.async_started.is_set(), 15, "no load")
            time.sleep(0.3)  # the async streams are under way
            first[0].proc.send_signal(signal.SIGKILL)  # mid-run, streams and calls in flight
            first[0].proc.wait(10)
            before = load.unary_ok
            _wait(lambda: load.unary_ok > before + 100 or load.failures, 15, "calls stopped after the kill")
            fourth = start(3)
            fourth.wait_serving()
            took = _wait(lambda: fourth.requests().get("OK", 0) > 0 or load.failures, 10,
                         "the fourth replica got no calls")
            assert took < 5
        finally:
            load.stop()
    assert not load.failures, load.failures[:3]  # 0 requests lost
    assert not load.frame_errors, load.frame_errors[:3]
    for stream in range(STREAMS + ASYNC_STREAMS):  # 0 frames lost or duplicated, in order
        assert load.received[stream] == load.sent[stream], stream
        assert len(load.received[stream]) > 5  # it ran
    for module in ("classifier", "aio"):
        assert any(r.name == f"roiclass.client.{module}" and "stream broke" in r.getMessage()
                   for r in caplog.records), f"no {module} stream was resumed"
    for replica in [*first[1:], fourth]:  # the others never saw an error
        counts = replica.requests()
        assert counts.get("OK", 0) > 0 and set(counts) == {"OK"}, counts
