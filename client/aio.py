"""AsyncClassifier: the asyncio client for the roiclass ObjectClassifier service.

    async with AsyncClassifier("127.0.0.1:50051") as classifier:
        result = await classifier.classify(image, rois=[(10, 20, 64, 48, 30.0)], top_k=5)
        async for item in classifier.stream(frames, top_k=1):
            print(item.request_id, item.ok)

The surface of Classifier on grpc.aio: the same requests (built and checked
by .messages before anything is sent), results (.types) and errors
(ClassifierError, mapped by the same function). Create it inside the event
loop that uses it: a grpc.aio channel belongs to one loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import grpc

from roiclass.v1 import classifier_pb2 as pb

from .connection import ClientBase
from .errors import ClassifierError
from .messages import (
    classify_request,
    ended_early,
    frame_request,
    health_request,
    missing_answer,
    model_request,
    serving_status,
    stream_result,
)
from .options import RequestOptions
from .resume import Journal, Reopens, answer_failed
from .types import (
    ClassifyResult,
    ModelInfo,
    ModelList,
    StreamResult,
    classify_result_from_proto,
    model_info_from_proto,
    model_list_from_proto,
)

logger = logging.getLogger(__name__)

__all__ = ["AsyncClassifier"]


class AsyncClassifier(ClientBase):
    """An asyncio connection to a roiclass server (the constructor's arguments:
    see ClientBase); an async context manager that closes it."""

    _channels = grpc.aio

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncClassifier":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Waits until the channel is connected (e.g. right after starting a
        server); raises ClassifierError(UNAVAILABLE) after `timeout` seconds."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            raise self._unreachable(timeout) from None

    # ---------------------------------------------------------------- calls

    async def classify(
        self, image: Any, rois: Any = None, *, request_id: str = "", timeout: float | None = None,
        polygons: Any = None, **options: Any
    ) -> ClassifyResult:
        """Classifies the ROIs of one image; one RoiResult per ROI, in order.

        image, rois, polygons: as Classifier.classify. options: RequestOptions'
        fields (model=, model_version=, top_k=, min_confidence=, channel_order=,
        heatmap=, heatmap_options=). timeout: seconds, None = the constructor's.
        """
        request = classify_request(image, rois, RequestOptions(**options), request_id, polygons)
        return classify_result_from_proto(await self._unary(self.stub.ClassifyObject, request, timeout))

    async def stream(
        self, frames: Iterable[Any] | AsyncIterable[Any], *, timeout: float | None = None, **options: Any
    ) -> AsyncIterator[StreamResult]:
        """Classifies a stream of frames over one RPC: `async for` yields one
        StreamResult per frame, in order.

        frames: an iterable or async iterable of Frame(image, rois, request_id)
        objects or bare images, read lazily; a plain iterable is read on the
        event loop, so a source that blocks (a camera) belongs in an async
        generator. A frame that fails (on the server, or bad input found here)
        yields a StreamResult with `error` set and the stream goes on; a
        failure of the whole call raises ClassifierError (a broken call is
        first re-opened and its unanswered frames re-sent, as in
        Classifier.stream). options: as
        classify. timeout: deadline for the whole stream in seconds; None = no
        deadline. Leaving the loop early cancels the call when the iterator is
        closed: at once with `async with contextlib.aclosing(stream)` or
        `await stream.aclose()`, else when it is garbage-collected.
        """
        stream = _ResumableStream(self, _frame_iterator(frames), RequestOptions(**options), timeout)
        async with contextlib.aclosing(stream.results()) as results:  # closing the stream ends the call at once
            async for result in results:
                yield result

    async def classify_video(self, source: Any, **arguments: Any) -> Any:
        """Classifier.classify_video for asyncio: opens the source (off the
        loop) and returns an AsyncVideoRun to read with `async for`; the
        same arguments. Needs PyAV: pip install 'roiclass[video]'.

            run = await classifier.classify_video("clip.mp4", frames="20:40")
            async for frame in run:
                print(frame.index, frame.result.results[0].class_name)
        """
        from .video import classify_video_async  # PyAV is the `video` extra

        return await classify_video_async(self, source, **arguments)

    async def list_models(self, timeout: float | None = None) -> ModelList:
        """All models of the server's repository, and the default model's name."""
        return model_list_from_proto(await self._unary(self.stub.ListModels, pb.ListModelsRequest(), timeout))

    async def get_model(self, name: str, version: str = "", timeout: float | None = None) -> ModelInfo:
        """One model; `version` "" = all its versions."""
        return model_info_from_proto(await self._unary(self.stub.GetModel, model_request(name, version), timeout))

    async def reload_models(self, timeout: float | None = None) -> ModelList:
        """Makes the server re-scan its model repository; returns the new list."""
        return model_list_from_proto(await self._unary(self.stub.ReloadModels, pb.ReloadModelsRequest(), timeout))

    async def upload_model(self, name: str, files: dict[str, bytes], timeout: float | None = None) -> None:
        """Sends a model as files and has the server load it: the Open Inference Protocol's
        RepositoryModelLoad with Triton's `file:<path>` parameters (the server writes them
        into its upload folder; the `admin` scope when tokens are on). files: relative path
        -> content, holding `<name>.emd`, `<name>.dlpk` or a `config.toml`."""
        from roiclass.inference import grpc_service_pb2 as oip
        from roiclass.inference import grpc_service_pb2_grpc as oip_grpc

        request = oip.RepositoryModelLoadRequest(model_name=name)
        for path, data in files.items():
            request.parameters[f"file:{path}"].bytes_param = data
        await self._unary(oip_grpc.GRPCInferenceServiceStub(self.channel).RepositoryModelLoad, request, timeout)

    async def health(self, model: str = "", timeout: float | None = None) -> str:
        """grpc.health.v1 status: "SERVING", "NOT_SERVING", ... of the server
        ("") or of one model (its name)."""
        return serving_status(await self._unary(self._health.Check, health_request(model), timeout))

    # -------------------------------------------------------------- helpers

    async def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(timeout)
        try:
            return await method(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as error:  # grpc.aio.AioRpcError: the sync call's code/details/metadata
            raise ClassifierError.from_rpc_error(error) from None


def _frame_iterator(frames: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(frames, AsyncIterable):
        return aiter(frames)
    return _from_sync(iter(frames))  # iter() here: a non-iterable fails at once


async def _from_sync(frames: Iterable[Any]) -> AsyncIterator[Any]:
    for frame in frames:
        yield frame


class _ResumableStream:
    """One stream() call: the caller's frames, the journal of those not yet
    answered, and the calls that carry them (a new one when a call breaks;
    see resume.py). The asyncio twin of classifier._ResumableStream."""

    def __init__(self, client: AsyncClassifier, frames: AsyncIterator[Any], options: RequestOptions,
                 timeout: float | None) -> None:
        self._client = client
        self._frames = frames
        self._options = options
        self._journal = Journal()
        self._changed = asyncio.Event()  # the journal grew or a call ended: wakes the reader
        self._pull = asyncio.Lock()  # one reader of the caller's iterator at a time
        self._reopens = Reopens(timeout)

    async def results(self) -> AsyncIterator[StreamResult]:
        while True:
            stop = asyncio.Event()
            call = self._client.stub.ClassifyObjectStream(
                self._requests(stop), timeout=self._reopens.remaining(), metadata=self._client._metadata
            )
            call.add_done_callback(lambda _: self._changed.set())
            try:
                async for result in self._read(call):
                    yield result
                if self._journal.failure is not None:
                    raise self._journal.failure
                return
            except ClassifierError as error:
                backoff = self._reopens.next_backoff(error)
                logger.warning("stream broke (%s): re-opening it with %d unanswered frames",
                               error, self._journal.unanswered())
                await asyncio.sleep(backoff)
            finally:
                stop.set()
                if not call.done():  # the caller stopped early, we failed, or a re-open follows
                    call.cancel()

    async def _requests(self, stop: asyncio.Event) -> AsyncIterator[pb.ClassifyObjectRequest]:
        """One call's requests: the journal's unanswered ones from its head,
        in order, then new frames."""
        journal = self._journal
        index = journal.head
        while not stop.is_set():
            index = max(index, journal.head)
            if index < journal.tail:
                kind, payload = journal.at(index)
                index += 1
                if kind == "sent":
                    yield payload
                continue
            # Shielded: a cancelled call must not cancel the caller's iterator mid-frame.
            if not await asyncio.shield(self._take_frame(index, stop)):
                return

    async def _take_frame(self, index: int, stop: asyncio.Event) -> bool:
        """Reads one frame into the journal; False when there are no more."""
        journal = self._journal
        async with self._pull:
            if index < journal.tail:  # another call's iterator read it meanwhile
                return True
            if stop.is_set() or journal.ended or journal.failure is not None:
                return False
            try:
                request = frame_request(await anext(self._frames), self._options)
            except StopAsyncIteration:
                journal.ended = True
                return False
            except Exception as error:  # the caller's iterator failed: hand it to the reader
                journal.failure = error
                return False
            finally:
                self._changed.set()  # the reader runs after this returns: the entry below is in
            # bad input found here: its error takes the frame's place
            journal.add("local" if isinstance(request, StreamResult) else "sent", request)
            return True

    async def _read(self, call: Any) -> AsyncIterator[StreamResult]:
        """Yields the results of the journal's head onward; raises
        ClassifierError when the call fails."""
        journal = self._journal
        while True:
            while not journal.entries and not journal.ended and journal.failure is None:
                if call.done():
                    raise await _end_error(call)
                self._changed.clear()
                if not (journal.entries or journal.ended or journal.failure is not None or call.done()):
                    await self._changed.wait()
            if not journal.entries:
                if journal.failure is None:
                    await _finish(call)
                return
            kind, payload = journal.entries[0]
            if kind == "local":
                journal.pop()
                yield payload
                continue
            result = await _answer(call, payload.request_id)
            journal.pop()
            self._reopens.answered()
            yield result


async def _answer(call: Any, request_id: str) -> StreamResult:
    """The server's answer to the frame `request_id`, the next one on the call."""
    try:
        response = await call.read()
    except grpc.RpcError as error:
        raise ClassifierError.from_rpc_error(error) from None
    if response is grpc.aio.EOF:
        raise missing_answer(request_id)
    return stream_result(response)


async def _finish(call: Any) -> None:
    """Waits for the call's final status after the last answer; raises if it failed."""
    try:
        extra = await call.read()
    except grpc.RpcError as error:
        failure = ClassifierError.from_rpc_error(error)
        if answer_failed(failure):
            raise failure from None
        return
    if extra is not grpc.aio.EOF:
        logger.warning("ignoring an answer past the last frame (request_id %r)", extra.request_id)


async def _end_error(call: Any) -> ClassifierError:
    """Why a call ended while frames were still coming."""
    try:
        await call.read()  # a failed call raises its status here
    except grpc.RpcError as error:
        return ClassifierError.from_rpc_error(error)
    return ended_early()
