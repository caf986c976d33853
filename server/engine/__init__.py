"""Inference engine: pooled ONNX Runtime sessions, dynamic batching, failover."""
from roiclass.server.engine.config import (EngineConfig, InferenceOutput, InstanceStatus,
                                           ModelVersionStatus)
from roiclass.server.engine.engine import Engine
from roiclass.server.engine.model import LoadedModel

__all__ = ["Engine", "EngineConfig", "InferenceOutput", "InstanceStatus", "LoadedModel",
           "ModelVersionStatus"]
