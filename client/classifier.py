"""Classifier: a blocking client for the roiclass ObjectClassifier service.

    with Classifier("127.0.0.1:50051") as classifier:
        result = classifier.classify(image, rois=[(10, 20, 64, 48, 30.0)], top_k=5)
        print(result.results[0].class_name)

Every failed call raises ClassifierError; inputs are checked before sending
(InvalidInputError, also a ValueError).
"""
from __future__ import annotations

import logging
import math
import queue
import threading
from typing import Any, Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc

from .errors import ClassifierError, InvalidInputError
from .images import to_image_proto
from .types import (
    ClassifyResult,
    Frame,
    ModelInfo,
    ModelList,
    Roi,
    StreamResult,
    classify_result_from_proto,
    model_info_from_proto,
    model_list_from_proto,
    to_heatmap_options_proto,
    to_roi_proto,
)

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# How often a stream reader waiting for its next frame checks that the call is alive.
_POLL_S = 0.05


def build_request(
    image: Any,
    rois: Any = None,
    *,
    model: str | None = None,
    model_version: str | None = None,
    top_k: int | None = None,
    min_confidence: float | None = None,
    channel_order: str | None = None,
    heatmap: bool = False,
    heatmap_options: Any = None,
    request_id: str = "",
) -> pb.ClassifyObjectRequest:
    """The ClassifyObjectRequest that Classifier.classify sends (see there)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidInputError(
            "top_k", f"must be an integer >= 0 (0 = all classes) or None (model default), got {top_k!r}"
        )
    if min_confidence is not None and (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, (int, float))
        or not (0.0 <= min_confidence <= 1.0)
    ):
        raise InvalidInputError(
            "min_confidence", f"must be a number in 0..1 or None (model default), got {min_confidence!r}"
        )
    for name, value in (("model", model), ("model_version", model_version), ("request_id", request_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(name, f"must be a string, got {type(value).__name__}")
    request = pb.ClassifyObjectRequest(
        model=model or "",
        model_version=model_version or "",
        image=to_image_proto(image, channel_order),
        rois=[to_roi_proto(roi, i) for i, roi in enumerate(_roi_list(rois))],
        create_relevance_heatmap=bool(heatmap),
        request_id=request_id or "",
    )
    # Optional fields: left unset, the server uses the model's defaults.
    if top_k is not None:
        request.top_k = top_k
    if min_confidence is not None:
        request.min_confidence = min_confidence
    if heatmap_options is not None:
        request.heatmap_options.CopyFrom(to_heatmap_options_proto(heatmap_options))
    return request


def _roi_list(rois: Any) -> Sequence[Any]:
    if rois is None:
        return ()
    if isinstance(rois, (Roi, pb.Roi)):
        return (rois,)
    if isinstance(rois, (str, bytes)) or not hasattr(rois, "__len__"):
        raise InvalidInputError("rois", f"must be a list of Roi or (x, y, width, height[, angle]), got {rois!r}")
    # A bare (x, y, w, h[, angle]) tuple is one ROI, not a list of numbers.
    if len(rois) in (4, 5) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rois):
        return (rois,)
    return rois


class Classifier:
    """A connection to a roiclass server; a context manager that closes it.

    address: "host:port". timeout: default deadline per call in seconds (None:
    no deadline). max_message_bytes: largest request/response. credentials:
    grpc.ChannelCredentials (e.g. grpc.ssl_channel_credentials()) for TLS;
    None = plaintext. options: extra grpc channel options.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float | None = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout is not None and not (timeout > 0):
            raise InvalidInputError("timeout", f"must be > 0 seconds or None, got {timeout!r}")
        self.address = address
        self.timeout = timeout
        channel_options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            *options,
        ]
        if credentials is not None:
            self.channel = grpc.secure_channel(address, credentials, channel_options)
        else:
            self.channel = grpc.insecure_channel(address, channel_options)
        self.stub = pb_grpc.ObjectClassifierStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Classifier({self.address!r}, timeout={self.timeout!r})"

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected (e.g. right after starting a
        server); raises ClassifierError(UNAVAILABLE) after `timeout` seconds."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise ClassifierError(
                grpc.StatusCode.UNAVAILABLE, f"no server reachable at {self.address} after {timeout:g} s"
            ) from None

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
        whole image. channel_order: what a colour array holds: "RGB", "BGR",
        "RGBA", "BGRA" or "GRAY" (None = RGB/RGBA/GRAY by channel count).
        top_k: classes returned per ROI (0 = all), min_confidence: leave out
        classes below it (0..1); None = the model's configured default. heatmap: also compute an
        occlusion relevance heatmap per ROI (HeatmapOptions to tune it).
        timeout: seconds, None = the constructor's.
        """
        request = build_request(
            image,
            rois,
            model=model,
            model_version=model_version,
            top_k=top_k,
            min_confidence=min_confidence,
            channel_order=channel_order,
            heatmap=heatmap,
            heatmap_options=heatmap_options,
            request_id=request_id,
        )
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
        options = dict(
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
            call = self.stub.ClassifyObjectStream(requests, timeout=timeout)
        except grpc.RpcError as error:
            raise ClassifierError.from_rpc_error(error) from None
        return _stream_results(call, pending, stop)

    def list_models(self, timeout: float | None = None) -> ModelList:
        """All models of the server's repository, and the default model's name."""
        return model_list_from_proto(self._unary(self.stub.ListModels, pb.ListModelsRequest(), timeout))

    def get_model(self, name: str, version: str = "", timeout: float | None = None) -> ModelInfo:
        """One model; `version` "" = all its versions."""
        if not isinstance(name, str) or not name:
            raise InvalidInputError("name", f"must be a model name, got {name!r}")
        request = pb.GetModelRequest(name=name, version=version or "")
        return model_info_from_proto(self._unary(self.stub.GetModel, request, timeout))

    def reload_models(self, timeout: float | None = None) -> ModelList:
        """Makes the server re-scan its model repository; returns the new list."""
        return model_list_from_proto(self._unary(self.stub.ReloadModels, pb.ReloadModelsRequest(), timeout))

    def health(self, model: str = "", timeout: float | None = None) -> str:
        """grpc.health.v1 status: "SERVING", "NOT_SERVING", ... of the server
        ("") or of one model (its name)."""
        request = health_pb2.HealthCheckRequest(service=model or "")
        response = self._unary(self._health.Check, request, timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # -------------------------------------------------------------- helpers

    def _deadline(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self.timeout
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise InvalidInputError("timeout", f"must be > 0 seconds or None, got {timeout!r}")
        return timeout

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(timeout)
        try:
            return method(request, timeout=deadline)
        except grpc.RpcError as error:
            raise ClassifierError.from_rpc_error(error) from None


def _stream_requests(
    frames: Iterator[Any], options: dict[str, Any], pending: queue.Queue, stop: threading.Event
) -> Iterator[pb.ClassifyObjectRequest]:
    while not stop.is_set():
        try:
            frame = next(frames)
        except StopIteration:
            break
        except BaseException as error:  # the caller's iterator failed: hand it to the reader
            pending.put(("raise", error))
            return
        if not isinstance(frame, Frame):
            frame = Frame(frame)
        try:
            request = build_request(frame.image, frame.rois, request_id=frame.request_id, **options)
        except ClassifierError as error:
            pending.put(("local", StreamResult(frame.request_id or "", None, error)))
            continue
        pending.put(("sent", frame.request_id))
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
                raise ClassifierError(
                    grpc.StatusCode.UNKNOWN, f"the server ended the stream before answering frame {payload!r}"
                ) from None
            except grpc.RpcError as error:
                raise ClassifierError.from_rpc_error(error) from None
            if response.HasField("error"):
                yield StreamResult(response.request_id, None, ClassifierError.from_status(response.error))
            else:
                yield StreamResult(response.request_id, classify_result_from_proto(response.response), None)
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
            raise ClassifierError(grpc.StatusCode.UNKNOWN, "the server ended the stream early")
