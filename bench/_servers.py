"""The servers under test, each in its own process (client and server must not
share a GIL): roiclass (`python -m roiclass.server.cli`) and the KServe model
server (bench/kserve_server.py in bench/.kserve-venv). Both are started,
waited for until their model is ready, and stopped with SIGTERM.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

BENCH = Path(__file__).resolve().parent
LOGS = BENCH / ".cache" / "logs"
_LISTENING = re.compile(r"listening on [\d.]+:(\d+)")


class ServerProcess:
    def __init__(self, name: str, argv: list[str]):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = self.log_path.open("w")
        log.info("starting %s: %s", name, " ".join(argv))
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=BENCH.parent)
        self.port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process, all its threads."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}; log tail:\n{tail}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: ServerProcess, is_ready, deadline: float, what: str) -> None:
    """Polls is_ready() (an RPC; errors count as not yet) until it is true or the deadline passes."""
    while True:
        server.check_alive()
        try:
            if is_ready():
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.name}: {what} in time")
        time.sleep(0.2)


def start_roiclass(model_dir: Path, model_name: str, extra_args: list[str], timeout: float = 180.0,
                   python: str | None = None, label: str = "roiclass") -> ServerProcess:
    """Serves one model folder on a free loopback port; returns once health
    says SERVING for the model (warm-up done). `python`: another interpreter
    (e.g. an earlier checkout's venv, the baseline of a refactor)."""
    argv = [python or sys.executable, "-m", "roiclass.server.cli", "--port", "0", "--model", str(model_dir),
            "--default-model", model_name, *extra_args]
    server = ServerProcess(f"{label}-{model_name}", argv)
    deadline = time.monotonic() + timeout
    try:
        while not server.port:
            server.check_alive()
            match = _LISTENING.search(server.log_path.read_text())
            if match:
                server.port = int(match.group(1))
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} did not log 'listening on' in {timeout:.0f} s")
            else:
                time.sleep(0.1)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            _wait_ready(server, lambda: health.Check(health_pb2.HealthCheckRequest(service=model_name),
                                                     timeout=2).status == serving,
                        deadline, f"model {model_name} not SERVING")
    except BaseException:
        server.stop()
        raise
    log.info("%s ready on port %d (pid %d)", server.name, server.port, server.pid)
    return server


def start_kserve(python: Path, spec: dict, model_name: str, v2, timeout: float = 120.0) -> ServerProcess:
    """The KServe model server for `spec` (see kserve_server.py); returns once
    the v2 ModelReady RPC says ready."""
    pb2, pb2_grpc = v2
    LOGS.mkdir(parents=True, exist_ok=True)
    spec_path = LOGS / f"kserve-{model_name}.json"
    spec_path.write_text(json.dumps(spec))
    grpc_port, http_port = free_port(), free_port()
    argv = [str(python), str(BENCH / "kserve_server.py"), "--spec", str(spec_path), "--model_name", model_name,
            "--grpc_port", str(grpc_port), "--http_port", str(http_port)]
    server = ServerProcess(f"kserve-{model_name}", argv)
    server.port = grpc_port
    deadline = time.monotonic() + timeout
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb2_grpc.GRPCInferenceServiceStub(channel)
            _wait_ready(server, lambda: stub.ModelReady(pb2.ModelReadyRequest(name=model_name), timeout=2).ready,
                        deadline, "model not ready")
    except BaseException:
        server.stop()
        raise
    log.info("%s ready on port %d (pid %d)", server.name, server.port, server.pid)
    return server
