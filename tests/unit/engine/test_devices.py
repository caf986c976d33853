"""CPU sessions' thread count: the cores the process may use, not the node's."""
from __future__ import annotations

import os

from roiclass.server import cores
from roiclass.server.engine.config import EngineConfig
from roiclass.server.engine.devices import SessionFactory


def test_cpu_threads_follow_a_cgroup_cpu_limit(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(cores, "CGROUP_CPU_MAX", cpu_max)
    factory = SessionFactory(EngineConfig(cpu_threads=0))
    affinity = len(os.sched_getaffinity(0))
    cpu_max.write_text("max 100000\n")
    assert factory.cpu_threads(1) == affinity
    cpu_max.write_text("100000 100000\n")  # a pod limited to one core on a bigger node
    assert factory.cpu_threads(1) == 1
    assert factory.cpu_threads(4) == 1  # never 0


def test_an_explicit_thread_count_wins(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    monkeypatch.setattr(cores, "CGROUP_CPU_MAX", cpu_max)
    assert SessionFactory(EngineConfig(cpu_threads=3)).cpu_threads(1) == 3
