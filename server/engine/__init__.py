"""Inference engine: pooled ONNX Runtime sessions, dynamic batching, failover.

The names load lazily (PEP 562): `roiclass.server.engine.config` is read by
the CLI and the parent of `--workers N`, which must not import ONNX Runtime
(a worker is spawned from a parent with no ORT or CUDA state of its own).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "EngineConfig": "config", "InferenceOutput": "config", "InstanceStatus": "config",
    "ModelVersionStatus": "config", "Engine": "engine", "LoadedModel": "model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
