"""Fault injection (EngineConfig.fault_injection): the engine's one test hook.

kind "run": the next n runs of chosen instances fail like a device error.
kind "preprocess": every ROI row for which `match(row)` is true fails its
request (rows in roiclass.server.geometry.ROI_COLUMNS order).
"""
from __future__ import annotations

import threading
import weakref
from typing import Callable

import numpy as np

FAULT_KINDS = ("run", "preprocess")


class InjectedFaults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Instance -> n
        self._poison: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> match

    def fail_runs(self, instance, times: int) -> None:
        with self._lock:
            self._runs[instance] = self._runs.get(instance, 0) + times

    def take_run(self, instance) -> bool:
        """True (and one fewer pending) when the instance's next run must fail."""
        if not self._runs:
            return False
        with self._lock:
            n = self._runs.get(instance, 0)
            if n <= 0:
                return False
            self._runs[instance] = n - 1
            return True

    def set_poison(self, model, match: Callable[[np.ndarray], bool] | None) -> None:
        with self._lock:
            if match is None:
                self._poison.pop(model, None)
            else:
                self._poison[model] = match

    def poison(self, model) -> Callable[[np.ndarray], bool] | None:
        return self._poison.get(model) if self._poison else None
