"""The drain gate and the error mapper on a real grpc.aio server (127.0.0.1,
port 0) with generic handlers of all four kinds, in the order the app uses."""
from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from roiclass.server.errors import InvalidArgument
from roiclass.server.interceptors import DrainGate, ErrorMapper
from roiclass.v1 import classifier_pb2 as pb

SERVICE = "test.Guarded"
OTHER = "test.Other"
Req, Resp = pb.ClassifyObjectRequest, pb.ClassifyObjectResponse
KINDS = ("UnaryUnary", "UnaryStream", "StreamUnary", "StreamStream", "WriteStream")
OBSERVED = f"/{SERVICE}/UnaryUnary"


class Behaviour:
    """What every handler does with its (first) request's request_id."""

    def __init__(self):
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def answer(self, request: Req, context) -> Resp:
        self.calls += 1
        rid = request.request_id
        if rid == "bad":
            raise InvalidArgument.for_field("rois[0].rect.width", "0 must be a finite number > 0")
        if rid == "boom":
            raise ValueError("boom")
        if rid == "abort":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        if rid == "wait":
            self.entered.set()
            await self.release.wait()
        return Resp(model="m", model_version="7", request_id=rid)


def _handlers(b: Behaviour) -> dict:
    async def unary_unary(request, context):
        return await b.answer(request, context)

    async def unary_stream(request, context):
        yield Resp(request_id="first")
        yield await b.answer(request, context)

    async def stream_unary(requests, context):
        async for request in requests:
            return await b.answer(request, context)

    async def stream_stream(requests, context):
        async for request in requests:
            yield await b.answer(request, context)

    async def write_stream(request, context):  # a unary-stream handler that writes
        await context.write(Resp(request_id="first"))
        await context.write(await b.answer(request, context))

    ser = dict(request_deserializer=Req.FromString, response_serializer=Resp.SerializeToString)
    return {
        "UnaryUnary": grpc.unary_unary_rpc_method_handler(unary_unary, **ser),
        "UnaryStream": grpc.unary_stream_rpc_method_handler(unary_stream, **ser),
        "StreamUnary": grpc.stream_unary_rpc_method_handler(stream_unary, **ser),
        "StreamStream": grpc.stream_stream_rpc_method_handler(stream_stream, **ser),
        "WriteStream": grpc.unary_stream_rpc_method_handler(write_stream, **ser),
    }


class FakeObserver:
    def __init__(self):
        self.seen = []

    def observes(self, method: str) -> bool:
        return method == OBSERVED

    def observe(self, model, version, code, seconds):
        assert seconds >= 0
        self.seen.append((model, version, code))


class Harness:
    def __init__(self, server, channel, gate, observer, behaviour):
        self.server, self.channel, self.gate = server, channel, gate
        self.observer, self.behaviour = observer, behaviour

    async def call(self, kind: str, rid: str, service: str = SERVICE) -> list[Resp]:
        """Responses of one call (all of a stream)."""
        path = f"/{service}/{kind}"
        ser = dict(request_serializer=Req.SerializeToString, response_deserializer=Resp.FromString)
        request = Req(request_id=rid, model="cats")
        if kind == "UnaryUnary":
            return [await self.channel.unary_unary(path, **ser)(request, timeout=10)]
        if kind in ("UnaryStream", "WriteStream"):
            return [r async for r in self.channel.unary_stream(path, **ser)(request, timeout=10)]
        if kind == "StreamUnary":
            return [await self.channel.stream_unary(path, **ser)(_aiter([request]), timeout=10)]
        return [r async for r in self.channel.stream_stream(path, **ser)(_aiter([request]), timeout=10)]


async def _aiter(items):
    for item in items:
        yield item


def run(test):
    """Runs test(harness) on a fresh server, in a fresh event loop."""

    async def main():
        behaviour, observer = Behaviour(), FakeObserver()
        gate = DrainGate(SERVICE)
        server = grpc.aio.server(interceptors=[ErrorMapper(SERVICE, observer), gate])
        handlers = _handlers(behaviour)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),
                                         grpc.method_handlers_generic_handler(OTHER, handlers)))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await test(Harness(server, channel, gate, observer, behaviour))
        finally:
            await server.stop(0)

    asyncio.run(main())


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _bad_request(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    md = dict(err.trailing_metadata() or ())
    status = status_pb2.Status.FromString(md["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_answers_through_both_interceptors(kind):
    async def test(h):
        responses = await h.call(kind, "ok")
        assert responses[-1].request_id == "ok" and h.behaviour.calls == 1
        assert h.gate.in_flight == 0

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_maps_roiclass_errors_with_their_field(kind):
    async def test(h):
        err = await _error(h.call(kind, "bad"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "rois[0].rect.width: 0 must be a finite number > 0"
        assert _bad_request(err) == [("rois[0].rect.width", "0 must be a finite number > 0")]

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_maps_other_errors_to_internal(kind):
    async def test(h):
        err = await _error(h.call(kind, "boom"))
        assert (err.code(), err.details()) == (grpc.StatusCode.INTERNAL, "internal error: ValueError: boom")

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_a_handlers_own_abort_passes_unchanged(kind):
    async def test(h):
        err = await _error(h.call(kind, "abort"))
        assert (err.code(), err.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not yours")

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_while_draining_every_kind_is_refused_before_its_handler(kind):
    async def test(h):
        h.gate.start_draining()
        err = await _error(h.call(kind, "ok"))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert err.details() == "the server is shutting down; retry on another instance"
        assert h.behaviour.calls == 0 and h.gate.in_flight == 0

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_calls_in_flight_are_counted_until_they_end_and_the_drain_waits(kind):
    async def test(h):
        call = asyncio.ensure_future(h.call(kind, "wait"))
        await asyncio.wait_for(h.behaviour.entered.wait(), 10)
        assert h.gate.in_flight == 1
        h.gate.start_draining()  # the call in flight goes on
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await h.gate.wait_idle(t0 + 0.2)  # gives up at its limit
        assert h.gate.in_flight == 1 and loop.time() - t0 >= 0.2
        h.behaviour.release.set()
        await h.gate.wait_idle(loop.time() + 10)
        assert h.gate.in_flight == 0
        assert (await call)[-1].request_id == "wait"

    run(test)


def test_other_services_pass_untouched():
    async def test(h):
        h.gate.start_draining()
        assert (await h.call("UnaryUnary", "ok", service=OTHER))[0].request_id == "ok"
        err = await _error(h.call("UnaryUnary", "bad", service=OTHER))
        assert err.code() == grpc.StatusCode.UNKNOWN  # grpc's own answer: no mapping
        assert h.observer.seen == []

    run(test)


def test_observed_calls_report_model_version_and_code():
    async def test(h):
        await h.call("UnaryUnary", "ok")
        await _error(h.call("UnaryUnary", "bad"))
        await _error(h.call("UnaryUnary", "boom"))
        await _error(h.call("UnaryUnary", "abort"))
        h.gate.start_draining()
        await _error(h.call("UnaryUnary", "ok"))
        assert h.observer.seen == [
            ("cats", "7", "OK"), ("cats", "", "INVALID_ARGUMENT"), ("cats", "", "INTERNAL"),
            ("cats", "", "PERMISSION_DENIED"), ("cats", "", "UNAVAILABLE")]

    run(test)


def test_calls_the_observer_does_not_observe_are_not_reported():
    async def test(h):
        for kind in KINDS[1:]:
            await h.call(kind, "ok")
            await _error(h.call(kind, "bad"))
        assert h.observer.seen == []

    run(test)


def test_not_found_method_is_left_to_grpc():
    async def test(h):
        err = await _error(h.call("UnaryUnary", "ok", service="test.Missing"))
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED

    run(test)


def test_mapper_without_observer_still_maps():
    async def main():
        server = grpc.aio.server(interceptors=[ErrorMapper(SERVICE)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            SERVICE, _handlers(Behaviour())),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(f"/{SERVICE}/UnaryUnary", request_serializer=Req.SerializeToString,
                                           response_deserializer=Resp.FromString)
                err = await _error(call(Req(request_id="bad"), timeout=10))
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_a_method_is_wrapped_once_not_on_every_call():
    async def answer(request, context):
        return request

    class Details:
        method = f"/{SERVICE}/UnaryUnary"

    async def run():
        gate = DrainGate(SERVICE)
        first = grpc.unary_unary_rpc_method_handler(answer)

        async def same(_):
            return first

        a = await gate.intercept_service(same, Details())
        b = await gate.intercept_service(same, Details())
        assert a is b and a is not first and a.unary_unary is not answer

        replaced = grpc.unary_unary_rpc_method_handler(answer)

        async def new(_):
            return replaced

        c = await gate.intercept_service(new, Details())
        assert c is not a  # a new handler object for the method is wrapped anew
        assert await c.unary_unary(Req(request_id="x"), None) == Req(request_id="x")

    asyncio.run(run())
