"""`roiclass serve --workers N`: N server processes on one port, supervised.

The parent starts each worker as a fresh interpreter (`python -m
roiclass.server.cli ... --worker-index I`), never a fork: the parent creates
no ONNX Runtime session and no CUDA context (it counts GPUs in a throwaway
interpreter), and a worker inherits nothing of it. Every
worker is a whole RoiclassServer with its own engine and sessions, bound to
the same port with SO_REUSEPORT (the kernel spreads connections, not calls).

Supervision: a worker that exits is logged and restarted after a backoff
that doubles per quick failure (capped); SIGTERM/SIGINT is forwarded as
SIGTERM to every worker, each drains as a single server does, and the parent
exits 0 once all have exited (leftovers are killed after grace + a margin).
SIGHUP is forwarded (TLS/token reload). Metrics: see worker_metrics.py.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from roiclass.server.cores import available_cores
from roiclass.server.worker_pool import write_pool

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5  # first restart delay; doubles per quick failure
BACKOFF_CAP_S = 30.0
STABLE_S = 60.0  # a worker that ran this long resets its backoff
STOP_MARGIN_S = 15.0  # after --grace: engine close, process exit
POLL_S = 0.1
POOL_FILE = "pool.json"  # in the state folder: how many workers serve (worker_pool.py)


def auto_workers(cores: int | None = None) -> int:
    """`--workers auto`: one worker per 2 cores (a worker's event loop, batcher and
    ONNX Runtime threads keep about two cores busy)."""
    cores = cores if cores is not None else available_cores()
    return max(1, cores // 2)


def parse_workers(text: str) -> int:
    """'auto' | N >= 1; ValueError names the flag and the allowed values."""
    if text.strip().lower() == "auto":
        return auto_workers()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"--workers must be an integer >= 1 or auto, not {text!r}")
    return n


def worker_devices(devices: list[str], workers: int) -> list[list[str]]:
    """Each worker's devices: every device used, none given to more workers than needed.
    More workers than GPUs: round-robin, one GPU each; fewer: each takes every N-th GPU."""
    if not devices or devices == ["cpu"]:
        return [["cpu"] for _ in range(workers)]
    if workers >= len(devices):
        return [[devices[i % len(devices)]] for i in range(workers)]
    return [devices[i::workers] for i in range(workers)]


def reserve_port(host: str, port: int) -> tuple[int, socket.socket]:
    """The port every worker binds. Port 0: the parent picks one, since each worker's
    own port-0 bind would get a different port; the bound (not listening) socket
    keeps it reserved while the workers run."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock.getsockname()[1], sock


@dataclass
class Worker:
    index: int
    argv: list[str]
    info_file: Path
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_failures: int = 0
    restart_at: float | None = None
    pids: list[int] = field(default_factory=list)

    def info(self) -> dict | None:
        """What the worker wrote once serving (pid, port, metrics_port); None before."""
        try:
            data = json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None
        return data if self.proc is not None and data.get("pid") == self.proc.pid else None


class Supervisor:
    def __init__(self, worker_argvs: list[list[str]], grace_s: float, state_dir: Path):
        self.metrics_token: str | None = None  # the bearer token of the workers' /metrics
        self.on_sighup = lambda: None  # the parent's own reload (its /metrics TLS and tokens)
        self.state_dir = state_dir
        self.grace_s = grace_s
        self.workers = [Worker(i, argv, state_dir / f"worker-{i}.json") for i, argv in enumerate(worker_argvs)]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._serving: int | None = None  # last count written to the pool file

    # -- lifecycle ---------------------------------------------------------------
    def _spawn(self, w: Worker) -> None:
        w.info_file.unlink(missing_ok=True)
        w.proc = subprocess.Popen(w.argv)
        w.started_at, w.restart_at = time.monotonic(), None
        w.pids.append(w.proc.pid)
        log.info("worker %d started: pid %d", w.index, w.proc.pid)

    def _check(self, w: Worker, now: float) -> None:
        if w.restart_at is not None:
            if now >= w.restart_at:
                w.restarts += 1
                self._spawn(w)
            return
        code = w.proc.poll()
        if code is None:
            return
        lived = now - w.started_at
        w.quick_failures = 0 if lived >= STABLE_S else w.quick_failures + 1
        delay = min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** max(0, w.quick_failures - 1))
        w.restart_at = now + delay
        log.warning("worker %d (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                    w.index, w.proc.pid, _describe_exit(code), lived, delay)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._sighup())
        with self._lock:
            for w in self.workers:
                self._spawn(w)
        while not self._stop.wait(POLL_S):
            with self._lock:
                now = time.monotonic()
                for w in self.workers:
                    self._check(w, now)
                self._publish_pool()
        return self._shutdown()

    def _publish_pool(self) -> None:
        """Rewrites the pool file when the number of serving workers changes."""
        serving = sum(1 for w in self.workers if w.restart_at is None and w.proc.poll() is None
                      and w.info() is not None)
        if serving != self._serving:
            self._serving = serving
            write_pool(self.state_dir / POOL_FILE, serving, len(self.workers))
            log.info("%d of %d workers serving", serving, len(self.workers))

    def _sighup(self) -> None:
        self._forward(signal.SIGHUP)
        self.on_sighup()

    def _forward(self, sig: int) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(sig)

    def _shutdown(self) -> int:
        log.info("shutting down %d workers: draining for up to %.1f s", len(self.workers), self.grace_s)
        with self._lock:
            self._forward(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s + STOP_MARGIN_S
            for w in self.workers:
                if w.proc is None:
                    continue
                try:
                    w.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("worker %d (pid %d) still running after the grace: killed", w.index, w.proc.pid)
                    w.proc.kill()
                    w.proc.wait()
        log.info("all workers stopped")
        return 0

    def status(self) -> list[tuple[int, bool, int, dict | None]]:
        """Per worker: (index, running, restarts, info) for the metrics endpoint."""
        with self._lock:
            return [(w.index, w.proc is not None and w.proc.poll() is None, w.restarts, w.info())
                    for w in self.workers]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def worker_argv(argv: list[str], index: int, port: int, devices: list[str], info_file: Path,
                metrics_token_file: Path | None, cpu_threads: int | None,
                http_port: int | None = None) -> list[str]:
    """The parent's flags, then the worker's own: argparse keeps the last value of a flag."""
    extra = ["--workers", "1", "--port", str(port), "--devices", ",".join(devices),
             "--worker-index", str(index), "--worker-file", str(info_file),
             "--worker-pool-file", str(info_file.with_name(POOL_FILE))]
    if metrics_token_file is not None:
        extra += ["--metrics-port", "0", "--metrics-host", "127.0.0.1",
                  "--worker-metrics-token-file", str(metrics_token_file)]
    if cpu_threads is not None:
        extra += ["--cpu-threads", str(cpu_threads)]
    if http_port is not None:  # the REST API's port, reserved like the gRPC one
        extra += ["--http-port", str(http_port)]
    return [sys.executable, "-m", "roiclass.server.cli", *argv, *extra]


def run_workers(argv: list[str], config, workers: int) -> int:
    """The parent of `roiclass serve --workers N` (N > 1): returns the exit code."""
    from roiclass.server.worker_metrics import start_aggregated_metrics

    try:
        devices = worker_devices(resolve_devices(config.engine.devices), workers)
    except subprocess.CalledProcessError as exc:  # parse_devices' ValueError names the flag's values
        log.error("--devices: %s", (exc.stderr.strip().splitlines() or ["?"])[-1])
        return 2
    try:
        port, reserved = reserve_port(config.host, config.port)
    except OSError as exc:  # taken by a process without SO_REUSEPORT, or no such address
        log.error("cannot listen on %s: %s", config.address, exc)
        return 1
    http_port, reserved_http = None, None
    if config.http_port is not None:
        try:
            http_port, reserved_http = reserve_port(config.http_host, config.http_port)
        except OSError as exc:
            reserved.close()
            log.error("cannot listen on %s:%d (--http-port): %s", config.http_host, config.http_port, exc)
            return 1
    cpu_threads = None
    if config.engine.cpu_threads == 0:  # share the cores among the workers' CPU sessions
        cores = available_cores()
        cpu_threads = max(1, cores // (workers * config.engine.instances_per_device))
    state_dir = Path(tempfile.mkdtemp(prefix="roiclass-workers-"))  # mode 0700: the token stays ours
    token_file = None
    if config.metrics_port is not None:  # the workers' /metrics answer the parent only
        token_file = state_dir / "metrics-token"
        token_file.write_text(secrets.token_urlsafe(32))
    argvs = [worker_argv(argv, i, port, devices[i], state_dir / f"worker-{i}.json", token_file,
                         cpu_threads if devices[i] == ["cpu"] else None, http_port)
             for i in range(workers)]
    supervisor = Supervisor(argvs, config.grace_s, state_dir)
    supervisor.metrics_token = token_file.read_text() if token_file is not None else None
    host = f"[{config.host}]" if ":" in config.host else config.host
    log.info("roiclass listening on %s:%d (%d worker processes, SO_REUSEPORT; devices %s)", host, port,
             workers, " | ".join(",".join(d) for d in devices))
    if http_port is not None:
        log.info("REST API on %s:%d (the workers share it, SO_REUSEPORT)", config.http_host, http_port)
    httpd = None
    if config.metrics_port is not None:
        httpd, supervisor.on_sighup = start_aggregated_metrics(config, supervisor)
    try:
        return supervisor.run()
    finally:
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        reserved.close()
        if reserved_http is not None:
            reserved_http.close()
        shutil.rmtree(state_dir, ignore_errors=True)


def resolve_devices(spec: str) -> list[str]:
    """--devices as a list, counted in a throwaway interpreter: `auto` calls cuInit, and the
    parent keeps no CUDA state (nor any ONNX Runtime session) of its own."""
    code = ("import json, sys; from roiclass.server.engine.devices import parse_devices; "
            "print(json.dumps(parse_devices(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_worker_info(path: Path, port: int, metrics_port: int | None) -> None:
    """Called by a worker once it serves: the parent reads it (pid check) for /metrics."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "port": port, "metrics_port": metrics_port}))
    tmp.replace(path)
