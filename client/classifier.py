"""Classifier: a blocking client for the roiclass ObjectClassifier service.

    with Classifier("127.0.0.1:50051") as classifier:
        result = classifier.classify(image, rois=[(10, 20, 64, 48, 30.0)], top_k=5)
        print(result.results[0].class_name)

Every failed call raises ClassifierError; inputs are checked before sending
(InvalidInputError, also a ValueError).
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Iterable, Iterator

import grpc

from roiclass.v1 import classifier_pb2 as pb

from .connection import DEFAULT_ADDRESS, DEFAULT_MAX_MESSAGE_BYTES, ClientBase
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

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_MAX_MESSAGE_BYTES", "Classifier"]

# How often a stream reader waiting for its next frame checks that the call is alive.
_POLL_S = 0.05


class Classifier(ClientBase):
    """A blocking connection to a roiclass server (the constructor's arguments:
    see ClientBase); a context manager that closes it."""

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected (e.g. right after starting a
        server); raises ClassifierError(UNAVAILABLE) after `timeout` seconds."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise self._unreachable(timeout) from None

    # ---------------------------------------------------------------- calls

    def classify(
        self,
        image: Any,
        rois: Any = None,
        model: str | None = None,
        model_version: str | None = None,
        top_k: int | None = None,
        min_confidence: float | None = None,
        channel_order: str | None = None,
        heatmap: bool = False,
        heatmap_options: Any = None,
        request_id: str = "",
        timeout: float | None = None,
    ) -> ClassifyResult:
        """Classifies the ROIs of one image; one RoiResult per ROI, in order.

        image: numpy array (H×W / H×W×C uint8, H×W uint16 = GRAY16), PIL
        image, encoded PNG/JPEG/BMP/TIFF bytes, or a file path.
        rois: Roi objects or (x, y, width, height[, angle]) tuples; None = the
        whole image. model ... heatmap_options: see RequestOptions (e.g.
        top_k: classes returned per ROI, 0 = all). timeout: seconds, None =
        the constructor's.
        """
        options = RequestOptions(
            model=model,
            model_version=model_version,
            top_k=top_k,
            min_confidence=min_confidence,
            channel_order=channel_order,
            heatmap=heatmap,
            heatmap_options=heatmap_options,
        )
        request = classify_request(image, rois, options, request_id)
        return classify_result_from_proto(self._unary(self.stub.ClassifyObject, request, timeout))

    def stream(
        self,
        frames: Iterable[Any],
        *,
        model: str | None = None,
        model_version: str | None = None,
        top_k: int | None = None,
        min_confidence: float | None = None,
        channel_order: str | None = None,
        heatmap: bool = False,
        heatmap_options: Any = None,
        timeout: float | None = None,
    ) -> Iterator[StreamResult]:
        """Classifies a stream of frames over one RPC, yielding one StreamResult
        per frame, in order.

        frames: Frame(image, rois, request_id) objects or bare images, read
        lazily (a camera generator works). A frame that fails (on the server,
        or bad input found here) yields a StreamResult with `error` set and the
        stream goes on; a failure of the whole call raises ClassifierError.
        timeout: deadline for the whole stream in seconds; None = no deadline
        (a stream lasts as long as its frames). Breaking out of the loop
        cancels the call.
        """
        options = RequestOptions(
            model=model,
            model_version=model_version,
            top_k=top_k,
            min_confidence=min_confidence,
            channel_order=channel_order,
            heatmap=heatmap,
            heatmap_options=heatmap_options,
        )
        # The request iterator runs on a grpc thread; it tells the reader, in
        # frame order, which frames went to the server and which failed here.
        pending: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        requests = _stream_requests(iter(frames), options, pending, stop)
        try:
            call = self.stub.ClassifyObjectStream(requests, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise ClassifierError.from_rpc_error(error) from None
        return _stream_results(call, pending, stop)

    def list_models(self, timeout: float | None = None) -> ModelList:
        """All models of the server's repository, and the default model's name."""
        return model_list_from_proto(self._unary(self.stub.ListModels, pb.ListModelsRequest(), timeout))

    def get_model(self, name: str, version: str = "", timeout: float | None = None) -> ModelInfo:
        """One model; `version` "" = all its versions."""
        return model_info_from_proto(self._unary(self.stub.GetModel, model_request(name, version), timeout))

    def reload_models(self, timeout: float | None = None) -> ModelList:
        """Makes the server re-scan its model repository; returns the new list."""
        return model_list_from_proto(self._unary(self.stub.ReloadModels, pb.ReloadModelsRequest(), timeout))

    def health(self, model: str = "", timeout: float | None = None) -> str:
        """grpc.health.v1 status: "SERVING", "NOT_SERVING", ... of the server
        ("") or of one model (its name)."""
        return serving_status(self._unary(self._health.Check, health_request(model), timeout))

    # -------------------------------------------------------------- helpers

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(timeout)
        try:
            return method(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as error:
            raise ClassifierError.from_rpc_error(error) from None


def _stream_requests(
    frames: Iterator[Any], options: RequestOptions, pending: queue.Queue, stop: threading.Event
) -> Iterator[pb.ClassifyObjectRequest]:
    while not stop.is_set():
        try:
            frame = next(frames)
        except StopIteration:
            break
        except BaseException as error:  # the caller's iterator failed: hand it to the reader
            pending.put(("raise", error))
            return
        request = frame_request(frame, options)
        if isinstance(request, StreamResult):  # bad input found here: its error takes the frame's place
            pending.put(("local", request))
            continue
        pending.put(("sent", request.request_id))
        yield request
    pending.put(("end", None))


def _stream_results(call: Any, pending: queue.Queue, stop: threading.Event) -> Iterator[StreamResult]:
    try:
        while True:
            kind, payload = _next_pending(call, pending)
            if kind == "end":
                _finish(call)
                return
            if kind == "raise":
                raise payload
            if kind == "local":
                yield payload
                continue
            try:
                response = next(call)
            except StopIteration:
                raise missing_answer(payload) from None
            except grpc.RpcError as error:
                raise ClassifierError.from_rpc_error(error) from None
            yield stream_result(response)
    finally:
        stop.set()
        if not call.done():  # the caller stopped early or we failed: end the RPC
            call.cancel()


def _finish(call: Any) -> None:
    """Waits for the call's final status after the last answer; raises if it failed."""
    try:
        extra = next(call)
    except StopIteration:
        return
    except grpc.RpcError as error:
        raise ClassifierError.from_rpc_error(error) from None
    logger.warning("ignoring an answer past the last frame (request_id %r)", extra.request_id)


def _next_pending(call: Any, pending: queue.Queue) -> tuple[str, Any]:
    while True:
        try:
            return pending.get(timeout=_POLL_S)
        except queue.Empty:
            pass
        if call.done():
            try:  # a last entry may have landed just before the call ended
                return pending.get_nowait()
            except queue.Empty:
                pass
            if call.code() != grpc.StatusCode.OK:
                raise ClassifierError.from_rpc_error(call)
            raise ended_early()
