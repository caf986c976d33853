"""The Open Inference Protocol's REST API (and POST /v1/classify) on `--http-port`.

server.py: HttpServer, the aiohttp site and its per-request guards (why
aiohttp: there); routes.py: the one table of routes, each naming the RPC
whose token scope it needs; codec.py: infer bodies (JSON tensors and the
binary-tensor extension); classify.py: /v1/classify; errors.py: the one
table gRPC status -> HTTP status; security.py: tokens and the caller.

aiohttp comes with the `http` extra; this module imports it only on use, so
the gRPC server runs without it. README.md beside this file: the endpoints.
"""
from __future__ import annotations

import importlib.util

EXTRA_HINT = "pip install 'roiclass[http]'"


def missing_dependency() -> str | None:
    """None when the REST API can run, else one line saying what to install."""
    if importlib.util.find_spec("aiohttp") is None:
        return f"--http-port needs aiohttp, which is not installed: {EXTRA_HINT}"
    return None
