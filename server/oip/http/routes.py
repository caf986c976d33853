"""The REST routes: each one names the RPC it stands for (the token scope it needs)
and calls the protocol core (server/oip/core.py) or the v1 servicer.

One table, ROUTES: (method, path, rpc, handler); the scope of each RPC is in
security/scopes.py (liveness and readiness need none, as on the gRPC port).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from roiclass.server.errors import InvalidArgument, status_code
from roiclass.server.oip.http import classify, codec

# (context, request, caller) -> response; caller: who asks (security.caller_of), for fair sharing.
Handler = Callable[["Context", web.Request, str], Awaitable[web.StreamResponse]]
PROBES = ("ServerLive", "ServerReady")  # answered while the server drains (ready then says false)
# Larger JSON bodies are parsed, and larger outputs encoded, off the event loop (which also runs gRPC).
PARSE_IN_THREAD_BYTES = 256 * 1024
ENCODE_IN_THREAD_VALUES = 64 * 1024  # e.g. 64 ROIs x 1000 classes
MULTIPART_PARTS = (classify.IMAGE_PART, classify.REQUEST_PART)


class Context:
    """What the handlers use: the protocol core, the v1 servicer, the request observer."""

    def __init__(self, protocol, servicer, observer, max_body_bytes: int, draining: Callable[[], bool]):
        self.protocol, self.servicer, self.observer = protocol, servicer, observer
        self.max_body_bytes = max_body_bytes
        self.draining = draining


def json_response(doc, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(doc, separators=(",", ":")).encode(), status=status,
                        content_type=codec.JSON_TYPE)


def _name(request: web.Request) -> tuple[str, str]:
    return request.match_info["model"], request.match_info.get("version", "")


# -- health and metadata ----------------------------------------------------
async def live(ctx: Context, request: web.Request, caller: str) -> web.Response:
    ok = ctx.protocol.live()
    return json_response({"live": ok}, 200 if ok else 400)


async def ready(ctx: Context, request: web.Request, caller: str) -> web.Response:
    ok = ctx.protocol.ready() and not ctx.draining()
    return json_response({"ready": ok}, 200 if ok else 400)  # 4xx = false (the protocol's rule)


async def server_metadata(ctx: Context, request: web.Request, caller: str) -> web.Response:
    return json_response(ctx.protocol.server_metadata())


async def model_metadata(ctx: Context, request: web.Request, caller: str) -> web.Response:
    return json_response(ctx.protocol.model_metadata(*_name(request)))


async def model_ready(ctx: Context, request: web.Request, caller: str) -> web.Response:
    name, version = _name(request)
    ok = ctx.protocol.model_ready(name, version)
    return json_response({"name": name, "ready": ok}, 200 if ok else 400)


async def model_config(ctx: Context, request: web.Request, caller: str) -> web.Response:
    return json_response(ctx.protocol.model_config(*_name(request)))


async def model_stats(ctx: Context, request: web.Request, caller: str) -> web.Response:
    name, version = (_name(request) if "model" in request.match_info else ("", ""))
    return json_response({"model_stats": ctx.protocol.statistics(name, version)})


# -- repository -------------------------------------------------------------
async def _optional_json(request: web.Request) -> dict:
    body = await request.read()
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument.for_field("body", f"is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument.for_field("body", f"must be a JSON object, not {type(doc).__name__}")
    return doc


async def repository_index(ctx: Context, request: web.Request, caller: str) -> web.Response:
    doc = await _optional_json(request)
    ready_only = doc.get("ready", False)
    if not isinstance(ready_only, bool):
        raise InvalidArgument.for_field("ready", f"must be true or false, not {json.dumps(ready_only)}")
    return json_response(ctx.protocol.repository_index(ready_only=ready_only))


async def _check_parameters(request: web.Request, allowed: dict[str, type]) -> None:
    """Unload's parameters: `unload_dependents` (tritonclient sends it) is moot: no model has
    dependents."""
    params = (await _optional_json(request)).get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidArgument.for_field("parameters", "must be a JSON object")
    for key, value in params.items():
        if key not in allowed:
            raise InvalidArgument.for_field(
                f"parameters.{key}", "is not supported: models load from their sources (--models, --model)"
                + (f"; allowed: {', '.join(allowed)}" if allowed else ""))
        if not isinstance(value, allowed[key]):
            raise InvalidArgument.for_field(f"parameters.{key}", f"must be {allowed[key].__name__}")


async def load(ctx: Context, request: web.Request, caller: str) -> web.Response:
    """Triton's `file:<path>` parameters (base64 strings, as its REST API takes them) send the
    model as files; nothing else is taken."""
    params = (await _optional_json(request)).get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidArgument.for_field("parameters", "must be a JSON object")
    files = {}
    for key, value in params.items():
        if not key.startswith("file:"):
            raise InvalidArgument.for_field(
                f"parameters.{key}", "is not supported: models load from their sources (--models, --model) "
                "or from the files sent; allowed: file:<path>")
        try:
            files[key[len("file:"):]] = base64.b64decode(value, validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise InvalidArgument.for_field(f"parameters.{key}", "must be the file's content in base64") from None
    await ctx.protocol.load(request.match_info["model"], files)
    return json_response({})


async def unload(ctx: Context, request: web.Request, caller: str) -> web.Response:
    await _check_parameters(request, {"unload_dependents": bool})
    await ctx.protocol.unload(request.match_info["model"])
    return json_response({})


# -- inference --------------------------------------------------------------
async def infer(ctx: Context, request: web.Request, caller: str) -> web.Response:
    name, version = _name(request)
    body = await request.read()
    header = request.headers.get(codec.HEADER_LENGTH)
    if len(body) > PARSE_IN_THREAD_BYTES and header is None:
        req = await asyncio.get_running_loop().run_in_executor(
            None, codec.parse_infer, body, header, name, version)
    else:
        req = codec.parse_infer(body, header, name, version)
    deadline = _deadline(req.parameters.get("timeout"))
    response = await _cancellable(lambda is_cancelled: ctx.protocol.infer(
        req, deadline=deadline, caller=caller, is_cancelled=is_cancelled))
    if sum(t.data.size for t in response.outputs) > ENCODE_IN_THREAD_VALUES:
        encoded = await asyncio.get_running_loop().run_in_executor(None, codec.encode_infer, response, req)
    else:
        encoded = codec.encode_infer(response, req)
    headers = {} if encoded.header_length is None else {codec.HEADER_LENGTH: str(encoded.header_length)}
    return web.Response(body=encoded.body, content_type=encoded.content_type, headers=headers)


def _deadline(timeout_us) -> float | None:
    """Triton's request parameter `timeout` (microseconds; tritonclient's infer(timeout=)) as the
    engine's deadline, as a gRPC deadline is: past it the request gets 504 (DEADLINE_EXCEEDED)."""
    if timeout_us is None:
        return None
    if isinstance(timeout_us, bool) or not isinstance(timeout_us, int) or timeout_us <= 0:
        raise InvalidArgument.for_field("parameters.timeout", f"{timeout_us!r} must be an integer > 0 "
                                                              "(microseconds)")
    return time.monotonic() + timeout_us / 1e6


async def _cancellable(start: Callable[[Callable[[], bool]], Awaitable]):
    """aiohttp cancels the handler when the client disconnects: the engine then drops
    the request's queued items (is_cancelled turns True), as for a cancelled gRPC call."""
    cancelled = False
    try:
        return await start(lambda: cancelled)
    except asyncio.CancelledError:
        cancelled = True
        raise


async def classify_v1(ctx: Context, request: web.Request, caller: str) -> web.Response:
    started = time.perf_counter()
    model, version, code = request.query.get("model", ""), "", "INTERNAL"
    try:
        msg = await _classify_request(ctx, request)
        model = msg.model
        response = await ctx.servicer.classify(msg, deadline=None, caller=caller)
        version, code = response.model_version, "OK"
        return json_response(classify.response_json(response))
    except Exception as exc:  # re-raised: the error middleware answers
        code = status_code(exc).name
        raise
    finally:
        if ctx.observer is not None:  # counted like a ClassifyObject call (roiclass_requests)
            ctx.observer.observe(model, version, code, time.perf_counter() - started)


async def _classify_request(ctx: Context, request: web.Request):
    query = dict(request.query)
    if request.content_type == "multipart/form-data":
        parts = await _multipart(request, ctx.max_body_bytes)
        return classify.request_from_parts(query, parts.get(classify.REQUEST_PART), parts.get(classify.IMAGE_PART))
    body = await request.read()
    if request.content_type == codec.JSON_TYPE:
        return classify.request_from_parts(query, body, None)
    return classify.request_from_parts(query, None, body)


async def _multipart(request: web.Request, limit: int) -> dict[str, bytes]:
    """The parts by name, read with one cap on their total size."""
    reader = await request.multipart()
    parts: dict[str, bytes] = {}
    total = 0
    while (part := await reader.next()) is not None:
        if part.name not in MULTIPART_PARTS:
            raise InvalidArgument.for_field(f"multipart part {part.name!r}",
                                            f"is not known; allowed: {', '.join(MULTIPART_PARTS)}")
        if part.name in parts:
            raise InvalidArgument.for_field(f"multipart part {part.name!r}", "is given twice")
        chunks = []
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            chunks.append(chunk)
        parts[part.name] = b"".join(chunks)
    return parts


MODEL = "/v2/models/{model}"
VERSION = "/v2/models/{model}/versions/{version}"
# (HTTP method, path, the RPC whose token scope it needs, handler). Order matters:
# /v2/models/stats before /v2/models/{model}.
ROUTES: list[tuple[str, str, str, Handler]] = [
    ("GET", "/v2/health/live", "ServerLive", live),
    ("GET", "/v2/health/ready", "ServerReady", ready),
    ("GET", "/v2", "ServerMetadata", server_metadata),
    ("GET", "/v2/models/stats", "ModelStatistics", model_stats),
    *((m, base + tail, rpc, h) for base in (MODEL, VERSION) for m, tail, rpc, h in (
        ("GET", "", "ModelMetadata", model_metadata),
        ("GET", "/ready", "ModelReady", model_ready),
        ("GET", "/config", "ModelConfig", model_config),
        ("GET", "/stats", "ModelStatistics", model_stats),
        ("POST", "/infer", "ModelInfer", infer),
    )),
    ("POST", "/v2/repository/index", "RepositoryIndex", repository_index),
    ("POST", "/v2/repository/models/{model}/load", "RepositoryModelLoad", load),
    ("POST", "/v2/repository/models/{model}/unload", "RepositoryModelUnload", unload),
    ("POST", "/v1/classify", "ClassifyObject", classify_v1),
]
