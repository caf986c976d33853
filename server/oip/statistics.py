"""Per model version: the protocol's request statistics (Triton's
/v2/models/{m}/stats shape), beside the engine's own counts of items and batches.

inference_count and execution_count are the engine's counters (every API's
requests, v1 included); success / fail / queue / compute_* are this
protocol's requests (gRPC and HTTP), timed by the engine's per-request
times (InferenceOutput)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

STAGES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


@dataclass
class _Version:
    counts: dict[str, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in STAGES})
    last_ms: int = 0


class RequestStatistics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], _Version] = {}

    def _add(self, key: tuple[str, str], stage: str, ns: int) -> _Version:
        v = self._versions.setdefault(key, _Version())
        c = v.counts[stage]
        c[0] += 1
        c[1] += max(0, int(ns))
        return v

    def success(self, name: str, version: str, total_ns: int, queue_us: int, preprocess_us: int,
                inference_us: int, output_ns: int) -> None:
        key = (name, version)
        with self._lock:
            v = self._add(key, "success", total_ns)
            self._add(key, "queue", queue_us * 1000)
            self._add(key, "compute_input", preprocess_us * 1000)
            self._add(key, "compute_infer", inference_us * 1000)
            self._add(key, "compute_output", output_ns)
            v.last_ms = int(time.time() * 1000)

    def fail(self, name: str, version: str, total_ns: int) -> None:
        with self._lock:
            self._add((name, version), "fail", total_ns).last_ms = int(time.time() * 1000)

    def snapshot(self, name: str, version: str, engine_counters: dict) -> dict:
        with self._lock:
            v = self._versions.get((name, version), _Version())
            stats = {s: {"count": c[0], "ns": c[1]} for s, c in v.counts.items()}
            last = v.last_ms
        return {
            "name": name, "version": version, "last_inference": last,
            "inference_count": engine_counters.get("items", 0),
            "execution_count": engine_counters.get("batches", 0),
            "inference_stats": stats, "batch_stats": [],
        }
