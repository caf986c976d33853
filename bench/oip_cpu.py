"""CPU time from /proc: a process with all its descendants (Triton's Python
backend runs in a stub process of its own, perf_analyzer's client is a child
of the bench), and the whole machine's busy time, which shows how much of the
CPU other work took during a point."""
from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces: split after its ")".
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and of its living descendants
    (descendants that already exited and were waited for count in their
    parent's cutime/cstime, fields 16-17)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = _stat_fields(p)
            total += sum(int(v) for v in f[11:15]) / _TICK  # utime stime cutime cstime
            todo += children(p)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, wall-clock CPU seconds) of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which user time already counts
    return (total - idle) / _TICK, total / _TICK
