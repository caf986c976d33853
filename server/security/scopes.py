"""The one table of token scopes: which scope each RPC of ObjectClassifier and of the
Open Inference Protocol (inference.GRPCInferenceService, and its HTTP routes) needs.

Health checking and reflection are not in it: they stay open (probes; the
--reflection flag decides the latter). A method missing from the table needs
`admin`, so a new RPC is closed until it is given its scope here.
"""
from __future__ import annotations

CLASSIFY = "classify"
ADMIN = "admin"
METRICS = "metrics"  # the HTTP /metrics endpoint, not an RPC
OPEN = ""  # no token needed: the protocol's liveness and readiness probes, as grpc.health

SCOPES = (CLASSIFY, ADMIN, METRICS)

METHOD_SCOPES = {
    "ClassifyObject": CLASSIFY,
    "ClassifyObjectStream": CLASSIFY,
    "ListModels": CLASSIFY,
    "GetModel": CLASSIFY,
    "ReloadModels": ADMIN,
    # inference.GRPCInferenceService
    "ServerLive": OPEN,
    "ServerReady": OPEN,
    "ModelReady": OPEN,
    "ServerMetadata": CLASSIFY,
    "ModelMetadata": CLASSIFY,
    "ModelConfig": CLASSIFY,
    "ModelInfer": CLASSIFY,
    "ModelStreamInfer": CLASSIFY,
    "ModelStatistics": CLASSIFY,
    "RepositoryIndex": CLASSIFY,
    "RepositoryModelLoad": ADMIN,
    "RepositoryModelUnload": ADMIN,
}


def scope_for(method: str) -> str:
    """The scope a call needs; `method` is "/package.Service/Method" or "Method"."""
    return METHOD_SCOPES.get(method.rsplit("/", 1)[-1], ADMIN)
