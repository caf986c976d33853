"""perf_analyzer, one concurrency point per call, and its CSV report parsed.

A point runs `perf_analyzer -m MODEL -i grpc --concurrency-range C:C`
(time windows of --measurement-interval, until 3 in a row agree within
--stability-percentage or --max-trials is reached), so that the points of
several servers can be interleaved and each point gets its own server CPU
reading; the same flags with --concurrency-range 1:16:STEP would run the
points back to back. The payload is a --input-data JSON file (write_input_json)
or `random`.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import oip_env

# perf_analyzer's CSV columns (microseconds) -> our names (milliseconds).
LATENCY_COLUMNS = {"p50 latency": "p50_ms", "p90 latency": "p90_ms", "p95 latency": "p95_ms",
                   "p99 latency": "p99_ms", "Avg latency": "avg_ms", "Server Queue": "server_queue_ms",
                   "Server Compute Infer": "server_infer_ms"}
_DTYPES = {"UINT8": np.uint8, "FP32": np.float32}


@dataclass
class PerfPoint:
    concurrency: int
    infer_per_s: float = float("nan")
    latency_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = float("nan")
    client_cpu_s: float = float("nan")
    error: str = ""
    command: str = ""


def parse_csv(text: str) -> list[PerfPoint]:
    """perf_analyzer's -f report: one row per concurrency."""
    points = []
    for row in csv.DictReader(io.StringIO(text)):
        point = PerfPoint(int(row["Concurrency"]), float(row["Inferences/Second"]))
        for column, name in LATENCY_COLUMNS.items():
            if row.get(column, "") not in ("", None):
                point.latency_ms[name] = int(row[column]) / 1000.0
        points.append(point)
    return points


def tensor_entry(array: np.ndarray) -> dict:
    """One input of perf_analyzer's JSON data: raw little-endian bytes in base64, and the shape."""
    return {"b64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
            "shape": list(array.shape)}


def write_input_json(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """One request's tensors ({name: array}, shapes without a batch dimension)."""
    for name, array in tensors.items():
        if array.dtype not in [np.dtype(t) for t in _DTYPES.values()]:
            raise ValueError(f"{name}: dtype {array.dtype}; allowed: {', '.join(_DTYPES)}")
    path.write_text(json.dumps({"data": [{name: tensor_entry(a) for name, a in tensors.items()}]}))
    return path


@dataclass(frozen=True)
class PerfSettings:
    measurement_ms: int = 2000
    stability_percent: int = 20
    max_trials: int = 6
    timeout_s: float = 90.0


@dataclass
class PerfRun:
    """One perf_analyzer invocation: its report rows, or the error it ended with."""
    points: list[PerfPoint]
    wall_s: float
    client_cpu_s: float
    command: str
    error: str = ""


def run(model: str, port: int, concurrency_range: str, input_data: str, settings: PerfSettings,
        shapes: dict[str, list[int]] | None = None, batch_size: int = 1) -> PerfRun:
    """perf_analyzer over --concurrency-range START:END[:STEP] (-b batch_size:
    the batch dimension it prepends when the model's max_batch_size > 0); its
    CPU time comes from wait4."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.csv"
        argv = [str(oip_env.perf_analyzer()), "-m", model, "-i", "grpc", "-u", f"127.0.0.1:{port}",
                "--concurrency-range", concurrency_range, "--input-data", input_data,
                "--measurement-interval", str(settings.measurement_ms),
                "--stability-percentage", str(settings.stability_percent),
                "--max-trials", str(settings.max_trials), "-b", str(batch_size), "-f", str(report)]
        for name, shape in (shapes or {}).items():
            argv += ["--shape", f"{name}:{','.join(map(str, shape))}"]
        log_path = Path(tmp) / "out.txt"
        started = time.perf_counter()
        with log_path.open("w") as out:
            proc = subprocess.Popen(argv, env=oip_env.perf_env(), stdout=out, stderr=subprocess.STDOUT)
            rc, cpu = _wait(proc, settings.timeout_s)
        result = PerfRun([], time.perf_counter() - started, cpu,
                         " ".join(a if a != str(report) else "report.csv" for a in argv[1:]))
        if rc != 0 or not report.exists():
            result.error = f"perf_analyzer exit {rc}: " + " | ".join(log_path.read_text().strip().splitlines()[-3:])
        else:
            result.points = parse_csv(report.read_text())
    return result


def run_point(model: str, port: int, concurrency: int, input_data: str, settings: PerfSettings,
              shapes: dict[str, list[int]] | None = None, batch_size: int = 1) -> PerfPoint:
    """One perf_analyzer run at one concurrency."""
    r = run(model, port, f"{concurrency}:{concurrency}", input_data, settings, shapes, batch_size)
    point = PerfPoint(concurrency, wall_s=r.wall_s, client_cpu_s=r.client_cpu_s, command=r.command, error=r.error)
    if not r.error and [p.concurrency for p in r.points] != [concurrency]:
        point.error = f"report rows {[p.concurrency for p in r.points]}, expected [{concurrency}]"
    elif not r.error:
        point.infer_per_s, point.latency_ms = r.points[0].infer_per_s, r.points[0].latency_ms
    return point


def _wait(proc: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """(exit code, user + system CPU seconds of the child) — killed after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        time.sleep(0.05)
    proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9
    return -9, usage.ru_utime + usage.ru_stime
