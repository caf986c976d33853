"""Counters and the fault injector are plain objects shared by threads."""
from __future__ import annotations

import threading

import numpy as np

from roiclass.server.engine.counters import COUNTER_NAMES, Counters
from roiclass.server.engine.faults import InjectedFaults


def test_counters_from_many_threads_add_up():
    c = Counters()

    def work():
        for n in range(1, 201):
            c.batch(n % 7 + 1)
            c.add("failed_items")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = c.snapshot()
    assert set(snap) == set(COUNTER_NAMES)
    assert snap["batches"] == snap["runs"] == 800 and snap["failed_items"] == 800
    assert snap["items"] == 4 * sum(n % 7 + 1 for n in range(1, 201)) and snap["max_batch"] == 7


class Thing:  # stands for an Instance / a model version (weakly referenced)
    pass


def test_run_faults_are_counted_per_instance_and_used_up():
    faults, a, b = InjectedFaults(), Thing(), Thing()
    faults.fail_runs(a, 2)
    assert [faults.take_run(a) for _ in range(3)] == [True, True, False]
    assert not faults.take_run(b)


def test_poison_is_per_model_and_can_be_cleared():
    faults, m1, m2 = InjectedFaults(), Thing(), Thing()
    faults.set_poison(m1, lambda row: row[0] == 1.0)
    assert faults.poison(m1)(np.array([1.0, 0, 1, 1, 0])) and faults.poison(m2) is None
    faults.set_poison(m1, None)
    assert faults.poison(m1) is None
