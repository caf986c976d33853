"""The one table of token scopes: which scope each RPC of ObjectClassifier needs.

Health checking and reflection are not in it: they stay open (probes; the
--reflection flag decides the latter). A method missing from the table needs
`admin`, so a new RPC is closed until it is given its scope here.
"""
from __future__ import annotations

CLASSIFY = "classify"
ADMIN = "admin"
METRICS = "metrics"  # the HTTP /metrics endpoint, not an RPC

SCOPES = (CLASSIFY, ADMIN, METRICS)

METHOD_SCOPES = {
    "ClassifyObject": CLASSIFY,
    "ClassifyObjectStream": CLASSIFY,
    "ListModels": CLASSIFY,
    "GetModel": CLASSIFY,
    "ReloadModels": ADMIN,
}


def scope_for(method: str) -> str:
    """The scope a call needs; `method` is "/package.Service/Method" or "Method"."""
    return METHOD_SCOPES.get(method.rsplit("/", 1)[-1], ADMIN)
