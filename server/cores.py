"""The cores this process may use: one function, read by `--workers auto`
(supervisor.py) and by the CPU sessions' thread count (engine/devices.py)."""
from __future__ import annotations

import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores(cgroup_cpu_max: Path | None = None) -> int:
    """Its CPU affinity, capped by a cgroup v2 CPU quota (a container's CPU
    limit: a pod sees all of the node's cores in its affinity and in
    os.cpu_count(), so ONNX Runtime would start a thread per node core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup_cpu_max or CGROUP_CPU_MAX).read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))  # ceil: a 1.5-core limit -> 2
    except (OSError, ValueError):
        pass
    return cores
