"""AsyncClassifier without a server: input checks, connection, error mapping.

Each test drives its coroutine with asyncio.run (a grpc.aio channel belongs to
the loop it was made in); the calls against a live server are in
tests/integration/test_client_aio.py.
"""
import asyncio
import inspect

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from roiclass.client import AsyncClassifier, Classifier, ClassifierError, InvalidInputError

UNREACHABLE = "127.0.0.1:1"
IMAGE = np.zeros((8, 8, 3), np.uint8)


def _run(body, **settings):
    async def main():
        async with AsyncClassifier(UNREACHABLE, **settings) as client:
            return await body(client)

    return asyncio.run(main())


def test_the_surface_mirrors_classifier():
    public = {name for name in dir(Classifier) if not name.startswith("_")}
    assert public <= {name for name in dir(AsyncClassifier) if not name.startswith("_")}
    for name in public - {"stream"}:
        assert inspect.iscoroutinefunction(getattr(AsyncClassifier, name)), name
    assert inspect.isasyncgenfunction(AsyncClassifier.stream)
    assert inspect.iscoroutinefunction(AsyncClassifier.__aenter__)
    assert inspect.iscoroutinefunction(AsyncClassifier.__aexit__)


def test_channel_is_grpc_aio_and_closed_by_the_context_manager():
    async def body(client):
        assert isinstance(client.channel, grpc.aio.Channel)
        assert repr(client) == "AsyncClassifier('127.0.0.1:1', timeout=3.0)"
        return client

    client = _run(body, timeout=3.0)
    assert client.channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN


def test_constructor_checks_timeout():
    with pytest.raises(InvalidInputError, match="timeout"):
        AsyncClassifier(UNREACHABLE, timeout=-1)


def test_bad_input_raises_before_anything_is_sent():
    async def body(client):
        with pytest.raises(InvalidInputError) as info:
            await client.classify(IMAGE, rois=[(0, 0, 4)])
        assert info.value.details[0].field == "rois[0]"
        with pytest.raises(InvalidInputError) as info:
            await client.classify(IMAGE, top_k=-1)
        assert info.value.details[0].field == "top_k"
        with pytest.raises(InvalidInputError, match="timeout"):
            await client.classify(IMAGE, timeout=0)
        with pytest.raises(InvalidInputError) as info:
            await client.get_model("")
        assert info.value.details[0].field == "name"
        with pytest.raises(TypeError, match="topk"):
            await client.classify(IMAGE, topk=3)

    _run(body)


def test_stream_rejects_what_is_not_iterable():
    async def body(client):
        with pytest.raises(TypeError):
            async for _ in client.stream(42):
                pass

    _run(body)


def test_wait_until_ready_raises_unavailable():
    async def body(client):
        with pytest.raises(ClassifierError, match=r"no server reachable at 127\.0\.0\.1:1 after 0\.2 s") as info:
            await client.wait_until_ready(timeout=0.2)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE

    _run(body)


def test_unreachable_server_is_unavailable():
    async def body(client):
        with pytest.raises(ClassifierError) as info:
            await client.health(timeout=2)
        assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

    _run(body)


class _SyncRpcError(grpc.RpcError):
    """What a failed sync call raises: the status through methods."""

    def __init__(self, code, details, trailing):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


def test_aio_rpc_error_maps_exactly_as_a_sync_error():
    bad_request = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="rois[1].rect.width", description="> 0")]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="bad width", details=[detail])
    trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    aio_error = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details="bad width"
    )
    from_aio = ClassifierError.from_rpc_error(aio_error)
    from_sync = ClassifierError.from_rpc_error(_SyncRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad width", trailing))
    assert (from_aio.code, from_aio.message, from_aio.details) == (from_sync.code, from_sync.message, from_sync.details)
    assert [v.field for v in from_aio.details] == ["rois[1].rect.width"]
