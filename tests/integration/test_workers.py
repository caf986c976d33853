"""`roiclass serve --workers 2`: real processes on 127.0.0.1, a tiny model.

Both workers serve (connections spread, seen in the parent's one scrape),
a SIGKILLed worker is restarted and serves again, SIGTERM drains both and
the parent exits 0.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.v1 import classifier_pb2_grpc
from tests.integration.requests import raw_image, request, roi
from tests.unit.engine.conftest import make_onnx

CHANNELS = 16  # all on one worker by chance: 2 * 2**-16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_log(path, pattern: str, timeout: float = 60.0, count: int = 1) -> list[re.Match]:
    deadline = time.monotonic() + timeout
    while True:
        matches = list(re.finditer(pattern, path.read_text()))
        if len(matches) >= count:
            return matches
        assert time.monotonic() < deadline, f"no {count} x {pattern!r} in the log:\n{path.read_text()[-3000:]}"
        time.sleep(0.05)


def _classify_on_fresh_channels(address: str) -> None:
    image = raw_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for _ in range(CHANNELS):  # own subchannel each: a connection of its own, spread by the kernel
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            reply = classifier_pb2_grpc.ObjectClassifierStub(ch).ClassifyObject(
                request(image, [roi(8, 8, 32, 32)]), timeout=10, wait_for_ready=True)
            assert len(reply.results) == 1


def _health_on_fresh_channels(address: str) -> set[str]:
    """The overall health each of CHANNELS connections (spread over the workers) reports."""
    seen = set()
    for _ in range(CHANNELS):
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            seen.add(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return seen


def _scrape(port: int) -> dict[str, dict[str, float]]:
    """{sample name: {worker: value}} of the parent's /metrics (OK requests, worker pids)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "roiclass_requests_total" and s.labels.get("code") != "OK":
                continue
            by_worker = out.setdefault(s.name, {})
            by_worker[s.labels.get("worker")] = by_worker.get(s.labels.get("worker"), 0.0) + s.value
    return out


@pytest.fixture
def start_workers(tmp_path):
    """(extra flags) -> (parent process, address, parent's metrics port, log path), once both serve."""
    procs = []

    def start(*extra: str):
        model = make_onnx(tmp_path / "tiny.onnx")
        port, log_path = _free_port(), tmp_path / "serve.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "roiclass.server.cli", "--workers", "2", "--port", str(port),
                 "--onnx", str(model), "--metrics-port", "0", "--grace", "5", *extra],
                stderr=log)
        procs.append(proc)
        _wait_log(log_path, r"\[worker \d\]: model tiny version 1: READY", count=2)
        metrics_port = int(_wait_log(log_path, r"metrics of all workers on http://127.0.0.1:(\d+)")[0].group(1))
        return proc, f"127.0.0.1:{port}", metrics_port, log_path

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def workers(start_workers):
    return start_workers()


def _alive(pid: int) -> bool:
    """Running (a zombie left to a pid 1 that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pids(log_path) -> dict[int, int]:
    return {int(m.group(1)): int(m.group(2)) for m in _wait_log(log_path, r"worker (\d) started: pid (\d+)", count=2)}


def test_two_workers_serve_restart_and_drain(workers):
    proc, address, metrics_port, log_path = workers
    pids = _pids(log_path)
    assert len(set(pids.values())) == 2
    _wait_log(log_path, r"2 of 2 workers serving")
    _wait_log(log_path, r"\[worker \d\]: worker pool serving", count=2)
    assert _health_on_fresh_channels(address) == {"SERVING"}

    _classify_on_fresh_channels(address)
    scrape = _scrape(metrics_port)
    ok = scrape["roiclass_requests_total"]
    assert set(ok) == {"0", "1"} and all(v > 0 for v in ok.values()), ok  # both served, one scrape
    assert sum(ok.values()) == CHANNELS
    assert scrape["roiclass_worker_pid"] == {"0": pids[0], "1": pids[1]}
    worker_port = _wait_log(log_path, r"\[worker 0\]: metrics on http://127.0.0.1:(\d+)")[0].group(1)
    with pytest.raises(urllib.error.HTTPError) as refused:  # a worker's own endpoint: the parent's token only
        urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/metrics", timeout=10)
    assert refused.value.code == 401

    os.kill(pids[0], signal.SIGKILL)
    _wait_log(log_path, r"worker 0 \(pid \d+\) exited with signal SIGKILL", timeout=10)
    # Worker 1 alone: its health says the pod is short of a worker until 0 is back.
    _wait_log(log_path, r"1 of 2 workers serving", timeout=10)
    _wait_log(log_path, r"\[worker 1\]: worker pool not serving", timeout=10)
    started = _wait_log(log_path, r"worker 0 started: pid (\d+)", timeout=10, count=2)
    new_pid = int(started[-1].group(1))
    assert new_pid != pids[0]
    deadline = time.monotonic() + 10
    while _scrape(metrics_port).get("roiclass_worker_pid", {}).get("0") != new_pid:  # serving again
        assert time.monotonic() < deadline, "the restarted worker did not serve in 10 s"
        time.sleep(0.1)
    _wait_log(log_path, r"\[worker \d\]: worker pool serving", timeout=10, count=4)  # 1 again, new 0
    assert _health_on_fresh_channels(address) == {"SERVING"}
    _classify_on_fresh_channels(address)
    scrape = _scrape(metrics_port)
    assert scrape["roiclass_requests_total"]["0"] > 0  # the new process answered calls
    assert scrape["roiclass_worker_restarts_total"] == {"0": 1.0, "1": 0.0}

    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert len(_wait_log(log_path, r"\[worker \d\]: roiclass stopped", count=2, timeout=1)) == 2
    assert not _alive(new_pid) and not _alive(pids[1])


def test_workers_stop_when_the_supervisor_is_killed(workers):
    proc, _, _, log_path = workers
    pids = _pids(log_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    for pid in pids.values():
        while _alive(pid):
            assert time.monotonic() < deadline, f"worker pid {pid} still runs without its supervisor"
            time.sleep(0.1)
    assert len(_wait_log(log_path, r"\[worker \d\]: supervisor \(pid \d+\) gone: stopping", count=2, timeout=1)) == 2


def test_parent_metrics_need_a_metrics_token_and_sighup_rereads_the_file(start_workers, tmp_path):
    metrics_token, other_token = "m" * 24, "c" * 24
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{metrics_token} metrics\n{other_token} classify\n")
    proc, _, metrics_port, log_path = start_workers("--auth-tokens", str(tokens))

    def status(token: str | None) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{metrics_port}/metrics",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert b'roiclass_worker_up{worker="1"} 1.0' in resp.read()
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    assert (status(None), status(other_token), status(metrics_token)) == (401, 403, 200)
    tokens.write_text(f"{other_token} classify\n")
    os.kill(proc.pid, signal.SIGHUP)
    _wait_log(log_path, r"token file re-read for /metrics: 1 tokens", timeout=10)
    assert status(metrics_token) == 401
