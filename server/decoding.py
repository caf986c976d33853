"""Request bytes -> messages, without letting a bad payload become UNKNOWN.

gRPC calls a service's deserializer before any handler runs; when it raises,
the call ends UNKNOWN with a traceback logged per request, and in a stream the
whole stream dies. Our deserializer returns an `Undecodable` in place of the
message instead: unary calls are refused with INVALID_ARGUMENT by the error
mapper, a stream frame fails alone (the domain refuses it), and the warning
is logged at most once per interval with the count of those it held back.
"""
from __future__ import annotations

import logging
import threading
import time

import grpc
from google.protobuf.message import DecodeError, Message

from roiclass.server.errors import InvalidArgument

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0


class Undecodable:
    """Stands for a request whose bytes do not parse as `type_name`."""
    __slots__ = ("type_name", "size", "reason")
    # What handlers and observers read of any request: empty, as proto3 defaults.
    request_id = model = model_version = name = version = ""

    def __init__(self, type_name: str, size: int, reason: str):
        self.type_name, self.size, self.reason = type_name, size, reason

    def describe(self) -> str:
        return (f"{self.size} bytes that do not parse as {self.type_name} ({self.reason}); "
                f"send a serialized {self.type_name}")

    def error(self) -> InvalidArgument:
        return InvalidArgument.for_field("request", self.describe())


def refuse_undecodable(behavior, streams_responses: bool):
    """A unary-request handler that refuses an Undecodable request before it runs
    (inside the interceptors, so the error mapper maps and counts it)."""
    if streams_responses:
        async def stream(request, context):
            if isinstance(request, Undecodable):
                raise request.error()
            async for response in behavior(request, context):
                yield response
        return stream

    async def unary(request, context):
        if isinstance(request, Undecodable):
            raise request.error()
        return await behavior(request, context)
    return unary


class _RateLimitedWarning:
    def __init__(self, interval_s: float):
        self._interval = interval_s
        self._lock = threading.Lock()
        self._last = -interval_s
        self._held = 0

    def warn(self, bad: Undecodable) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        log.warning("undecodable request: %s%s", bad.describe(),
                    f" ({held} more since the last warning)" if held else "")


_warning = _RateLimitedWarning(LOG_INTERVAL_S)


def lenient_parser(message_type: type[Message]):
    """A request deserializer that never raises (see the module docstring)."""
    name = message_type.DESCRIPTOR.full_name

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            bad = Undecodable(name, len(data), str(exc) or type(exc).__name__)
            _warning.warn(bad)
            return bad

    return parse


def add_servicer(servicer, server, service_descriptor, messages) -> None:
    """Registers every method of `service_descriptor` on `servicer` (as the
    generated add_*Servicer_to_server does) with lenient request parsing.
    `messages` is the generated module holding the message classes."""
    kinds = {(False, False): grpc.unary_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler,
             (True, True): grpc.stream_stream_rpc_method_handler}
    handlers = {}
    for method in service_descriptor.methods:
        request = getattr(messages, method.input_type.name)
        response = getattr(messages, method.output_type.name)
        make = kinds[(method.client_streaming, method.server_streaming)]
        behavior = getattr(servicer, method.name)
        if not method.client_streaming:  # a stream's frames are refused one by one (domain.py)
            behavior = refuse_undecodable(behavior, method.server_streaming)
        handlers[method.name] = make(behavior,
                                     request_deserializer=lenient_parser(request),
                                     response_serializer=response.SerializeToString)
    name = service_descriptor.full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    if hasattr(server, "add_registered_method_handlers"):  # grpcio >= 1.63
        server.add_registered_method_handlers(name, handlers)
