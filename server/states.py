"""The states of a model version, in one table (engine, metrics, API, health)."""
from __future__ import annotations

from enum import Enum


class ModelState(str, Enum):
    """A str enum: a state compares equal to its name ("READY")."""

    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"
    UNLOADED = "UNLOADED"

    def __str__(self) -> str:
        return self.value
