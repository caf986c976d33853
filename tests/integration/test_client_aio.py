"""roiclass.client.AsyncClassifier against a real server with the built-in model.

Each test runs its coroutine with asyncio.run and opens its own client (a
grpc.aio channel belongs to the loop it was made in).
"""
from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest

from roiclass.client import (
    AsyncClassifier,
    Classifier,
    ClassifierError,
    Frame,
    HeatmapOptions,
    InvalidInputError,
    Roi,
    classifier_pb2 as pb,
)
from tests.conftest import CAT_CLASSES, png_bytes

BAD_PIXELS = pb.Image(raw=pb.RawImage(width=10, height=10, pixel_format=pb.RGB8, pixels=b"short"))
CAT_ROI = (140, 20, 200, 200)


def _run(server, body, **settings):
    settings.setdefault("timeout", 60)

    async def main():
        async with AsyncClassifier(server.address, **settings) as client:
            await client.wait_until_ready(timeout=10)
            return await body(client)

    return asyncio.run(main())


async def _collect(stream) -> list:
    return [item async for item in stream]


def _same_results(sync_result, async_result) -> None:
    assert (async_result.model, async_result.model_version, async_result.request_id) == (
        sync_result.model, sync_result.model_version, sync_result.request_id)
    assert len(async_result.results) == len(sync_result.results)
    for want, got in zip(sync_result.results, async_result.results):
        assert (got.roi_id, got.aligned_roi, got.class_index, got.class_name) == (
            want.roi_id, want.aligned_roi, want.class_index, want.class_name)
        assert [c.index for c in got.confidences] == [c.index for c in want.confidences]
        assert got.score == pytest.approx(want.score, abs=1e-6)
        assert (got.heatmap is None) == (want.heatmap is None)
        if want.heatmap is not None:
            assert np.array_equal(got.heatmap.image, want.heatmap.image)


def test_classify_numpy_png_and_path(server, chelsea, tmp_path):
    path = tmp_path / "chelsea.png"
    path.write_bytes(png_bytes(chelsea))

    async def body(client):
        return await asyncio.gather(
            client.classify(chelsea, top_k=3, request_id="np"), client.classify(path), client.classify(path.read_bytes())
        )

    from_array, from_path, from_bytes = _run(server, body)
    for result in (from_array, from_path, from_bytes):
        (roi_result,) = result.results
        assert roi_result.class_index in CAT_CLASSES, roi_result.class_name
    assert from_array.request_id == "np" and len(from_array.results[0].confidences) == 3
    assert from_array.timing.total_us >= from_array.timing.inference_us > 0
    assert from_bytes.results[0].score == pytest.approx(from_path.results[0].score, abs=1e-6)


def test_sync_and_async_give_the_same_answers(server, chelsea):
    rois = [CAT_ROI, Roi(140, 20, 200, 200, 15.0, id="turned"), (10, 10, 40, 40, 30.0)]
    options = dict(model_version="", top_k=4, min_confidence=0.0, request_id="same")
    heat = dict(rois=[CAT_ROI], heatmap=True, heatmap_options=HeatmapOptions(patch_size=112, stride=56, max_side=64))
    bad = dict(rois=[(10, 10, 50, 50), (10, 10, 0, 50)])
    frames = [Frame(chelsea, rois=[CAT_ROI], request_id="a"), Frame(BAD_PIXELS, request_id="b"), chelsea]

    with Classifier(server.address, timeout=60) as sync:
        sync_plain = sync.classify(chelsea, rois, **options)
        sync_heat = sync.classify(chelsea, **heat)
        with pytest.raises(ClassifierError) as sync_error:
            sync.classify(chelsea, **bad)
        sync_stream = list(sync.stream(frames, top_k=2))
        sync_models = sync.list_models()

    async def body(client):
        plain = await client.classify(chelsea, rois, **options)
        with_heatmap = await client.classify(chelsea, **heat)
        with pytest.raises(ClassifierError) as error:
            await client.classify(chelsea, **bad)
        return plain, with_heatmap, error.value, await _collect(client.stream(frames, top_k=2)), await client.list_models()

    plain, with_heatmap, error, stream, models = _run(server, body)
    _same_results(sync_plain, plain)
    _same_results(sync_heat, with_heatmap)
    assert (error.code, error.message, error.details) == (
        sync_error.value.code, sync_error.value.message, sync_error.value.details)
    assert [(i.request_id, i.ok) for i in stream] == [(i.request_id, i.ok) for i in sync_stream]
    assert [i.request_id for i in stream] == ["a", "b", ""]
    assert (stream[1].error.code, stream[1].error.details) == (sync_stream[1].error.code, sync_stream[1].error.details)
    for want, got in ((sync_stream[0], stream[0]), (sync_stream[2], stream[2])):
        _same_results(want.result, got.result)
    assert models == sync_models


def test_stream_in_order_with_server_and_local_errors(server, chelsea):
    small = np.ascontiguousarray(chelsea[::4, ::4])

    async def frames():  # an async source
        for i in range(8):
            await asyncio.sleep(0)
            if i == 3:
                yield Frame(BAD_PIXELS, request_id="server")
            elif i == 5:
                yield Frame(small.astype(np.float64), request_id="local")
            else:
                yield Frame(chelsea, rois=[CAT_ROI], request_id=f"f{i}")

    async def body(client):
        return await _collect(client.stream(frames(), top_k=1))

    items = _run(server, body)
    assert [item.request_id for item in items] == ["f0", "f1", "f2", "server", "f4", "local", "f6", "f7"]
    assert items[3].error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in items[3].error.details] == ["image.raw.pixels"]
    assert items[5].error.code == grpc.StatusCode.INVALID_ARGUMENT and items[5].error.details[0].field == "image"
    for i in (0, 1, 2, 4, 6, 7):
        assert items[i].ok and items[i].result.results[0].class_index in CAT_CLASSES
        assert items[i].result.request_id == f"f{i}"


def test_stream_of_a_list_and_of_a_sync_generator(server, chelsea):
    small = np.ascontiguousarray(chelsea[::4, ::4])

    async def body(client):
        from_list = await _collect(client.stream([small, small], top_k=1))
        from_generator = await _collect(client.stream((Frame(small, request_id=str(i)) for i in range(3)), top_k=1))
        return from_list, from_generator

    from_list, from_generator = _run(server, body)
    assert [item.ok for item in from_list] == [True, True]
    assert [item.request_id for item in from_generator] == ["0", "1", "2"] and all(i.ok for i in from_generator)


def test_stream_stops_when_the_caller_breaks(server, chelsea):
    async def endless():
        while True:
            yield chelsea

    async def body(client):
        seen = 0
        stream = client.stream(endless(), top_k=1)
        async for item in stream:
            assert item.ok
            seen += 1
            if seen == 3:
                break
        await stream.aclose()
        return seen, await client.health()  # the channel is still fine

    assert _run(server, body) == (3, "SERVING")


def test_stream_caller_iterator_error_is_raised(server, chelsea):
    async def frames():
        yield chelsea
        raise RuntimeError("camera unplugged")

    async def body(client):
        stream = client.stream(frames(), top_k=1)
        assert (await anext(stream)).ok
        with pytest.raises(RuntimeError, match="camera unplugged"):
            await anext(stream)

    _run(server, body)


def test_stream_deadline_ends_a_stream_waiting_for_frames(server, chelsea):
    async def slow():
        yield chelsea
        await asyncio.sleep(30)  # the call's deadline passes first
        yield chelsea

    async def body(client):
        items = []
        started = time.monotonic()
        with pytest.raises(ClassifierError) as info:
            async for item in client.stream(slow(), top_k=1, timeout=2):
                items.append(item)
        return items, info.value, time.monotonic() - started

    items, error, waited = _run(server, body)
    assert [item.ok for item in items] == [True]
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert waited < 15  # the reader learns of the deadline, not of the next frame


def test_errors_carry_code_message_and_details(server, chelsea):
    async def body(client):
        with pytest.raises(ClassifierError) as bad:
            await client.classify(chelsea, rois=[(10, 10, 50, 50), (10, 10, 0, 50)])
        with pytest.raises(ClassifierError) as unknown:
            await client.classify(chelsea, model="no-such-model")
        with pytest.raises(InvalidInputError):
            await client.classify(chelsea.astype(np.float64))
        return bad.value, unknown.value

    bad, unknown = _run(server, body)
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad.details] == ["rois[1].rect.width"] and "rois[1].rect.width" in bad.message
    assert unknown.code == grpc.StatusCode.NOT_FOUND and unknown.details == ()


def test_models_api_and_health(server):
    async def body(client):
        models = await client.list_models()
        assert models.default_model and models.get(models.default_model) is not None
        model = await client.get_model(models.default_model)
        assert model.name == models.default_model and len(model.classes) == 1000
        assert any(v.state == "READY" for v in model.versions)
        assert (await client.reload_models()).default_model == models.default_model
        assert await client.health() == "SERVING"
        assert await client.health(models.default_model) == "SERVING"
        with pytest.raises(ClassifierError) as info:
            await client.get_model("no-such-model")
        assert info.value.code == grpc.StatusCode.NOT_FOUND

    _run(server, body)


def test_per_call_timeout(server, chelsea):
    async def body(client):
        with pytest.raises(ClassifierError) as info:
            await client.classify(chelsea)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (await client.classify(chelsea, timeout=60)).results

    _run(server, body, timeout=1e-6)
