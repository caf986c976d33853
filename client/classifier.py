"""Classifier: a blocking client for the roiclass ObjectClassifier service.

    with Classifier("127.0.0.1:50051") as classifier:
        result = classifier.classify(image, rois=[(10, 20, 64, 48, 30.0)], top_k=5)
        print(result.results[0].class_name)

Every failed call raises ClassifierError; inputs are checked before sending
(InvalidInputError, also a ValueError).
"""
from __future__ import annotations

import logging
import threading
import time
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
        polygons: Any = None,
        detector: str | None = None,
        detector_version: str | None = None,
        children: bool | None = None,
        max_child_depth: int | None = None,
        tta: str | None = None,
        tta_spread: bool = False,
    ) -> ClassifyResult:
        """Classifies the ROIs of one image; one RoiResult per ROI, in order.

        image: numpy array (H×W / H×W×C uint8, H×W uint16 = GRAY16; H×W×B
        uint8, uint16 or float32 of other band counts, or channel_order
        "BANDS": GENERIC), PIL image, encoded PNG/JPEG/BMP/TIFF bytes, or a
        file path.
        rois: Roi objects or (x, y, width, height[, angle]) tuples; None = the
        whole image. model ... heatmap_options: see RequestOptions (e.g.
        top_k: classes returned per ROI, 0 = all). timeout: seconds, None =
        the constructor's. polygons: None or one mask per ROI (None, a ring, a
        list of rings or a shapely Polygon in image coordinates; see
        messages.roi_proto).
        """
        options = RequestOptions(
            model=model,
            model_version=model_version,
            top_k=top_k,
            min_confidence=min_confidence,
            channel_order=channel_order,
            heatmap=heatmap,
            heatmap_options=heatmap_options,
            detector=detector,
            detector_version=detector_version,
            children=children,
            max_child_depth=max_child_depth,
            tta=tta,
            tta_spread=tta_spread,
        )
        request = classify_request(image, rois, options, request_id, polygons)
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
        detector: str | None = None,
        detector_version: str | None = None,
        children: bool | None = None,
        max_child_depth: int | None = None,
        tta: str | None = None,
        tta_spread: bool = False,
    ) -> Iterator[StreamResult]:
        """Classifies a stream of frames over one RPC, yielding one StreamResult
        per frame, in order.

        frames: Frame(image, rois, request_id) objects or bare images, read
        lazily (a camera generator works). A frame that fails (on the server,
        or bad input found here) yields a StreamResult with `error` set and the
        stream goes on; a failure of the whole call raises ClassifierError.
        timeout: deadline for the whole stream in seconds; None = no deadline
        (a stream lasts as long as its frames). Breaking out of the loop
        cancels the call. A call that breaks (UNAVAILABLE: its server died)
        is re-opened, on another server when there are several, and the
        frames not yet answered are sent again: each frame's result comes
        once, in order (resume.py).
        """
        options = RequestOptions(
            model=model,
            model_version=model_version,
            top_k=top_k,
            min_confidence=min_confidence,
            channel_order=channel_order,
            heatmap=heatmap,
            heatmap_options=heatmap_options,
            detector=detector,
            detector_version=detector_version,
            children=children,
            max_child_depth=max_child_depth,
            tta=tta,
            tta_spread=tta_spread,
        )
        return _ResumableStream(self, iter(frames), options, timeout).results()

    def classify_video(self, source: Any, *, frames: Any = None, every: int | None = None,
                       fps: float | None = None, rois: Any = None, live: bool | None = None,
                       window: int | None = None, **options: Any) -> Any:
        """Classifies the frames of a video file, an image sequence (a folder or
        a glob, natural order), a live source (rtsp://, http://, /dev/videoN)
        or any iterator of RGB arrays wrapped in video.CameraFrames over one
        stream; returns a VideoRun: iterate it for VideoFrameResults
        (index, time, result | error | skipped) in frame order, its `stats`
        counts decoded / classified / dropped frames and the lag.

        frames: "START:END", (start, end) or range: exact, END excluded; every:
        keep every N-th; fps: resample by timestamp. rois: as for classify,
        the same on every frame. live: drop the oldest unsent frame when the
        server falls behind (default for live sources; on a file, read at its
        frame rate). window: frames in flight (default 64, the server's).
        Also: max_side, only_frames, reconnect, rate, pixels ("yuv": I420
        frames as decoded, the default; "rgb"), model, model_version, top_k,
        min_confidence, timeout (roiclass.client.video.classify_video).
        Needs PyAV: pip install 'roiclass[video]'.
        """
        from .video import classify_video  # PyAV is the `video` extra

        return classify_video(self, source, frames=frames, every=every, fps=fps, rois=rois, live=live,
                              window=window, **options)

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


class _ResumableStream:
    """One stream() call: the caller's frames, the journal of those not yet
    answered, and the calls that carry them (a new one when a call breaks;
    see resume.py)."""

    def __init__(self, client: Classifier, frames: Iterator[Any], options: RequestOptions,
                 timeout: float | None) -> None:
        self._client = client
        self._frames = frames
        self._options = options
        self._journal = Journal()
        self._cond = threading.Condition()  # guards the journal; wakes the reader
        self._pull = threading.Lock()  # one reader of the caller's iterator at a time
        self._reopens = Reopens(timeout)

    def results(self) -> Iterator[StreamResult]:
        while True:
            stop = threading.Event()
            try:
                call = self._client.stub.ClassifyObjectStream(
                    self._requests(stop), timeout=self._reopens.remaining(), metadata=self._client._metadata
                )
            except grpc.RpcError as error:
                raise ClassifierError.from_rpc_error(error) from None
            try:
                failure = yield from self._read(call)
                if failure is not None:
                    raise failure
                return
            except ClassifierError as error:
                backoff = self._reopens.next_backoff(error)
                logger.warning("stream broke (%s): re-opening it with %d unanswered frames",
                               error, self._journal.unanswered())
                time.sleep(backoff)
            finally:
                stop.set()
                if not call.done():  # the caller stopped early, we failed, or a re-open follows
                    call.cancel()

    def _requests(self, stop: threading.Event) -> Iterator[pb.ClassifyObjectRequest]:
        """One call's requests: the journal's unanswered ones from its head,
        in order, then new frames (runs on a grpc thread)."""
        journal = self._journal
        with self._cond:
            index = journal.head
        while not stop.is_set():
            with self._cond:
                index = max(index, journal.head)
                entry = journal.at(index) if index < journal.tail else None
            if entry is not None:
                index += 1
                if entry[0] == "sent":
                    yield entry[1]
                continue
            if not self._take_frame(index, stop):
                return

    def _take_frame(self, index: int, stop: threading.Event) -> bool:
        """Reads one frame into the journal; False when there are no more."""
        journal = self._journal
        with self._pull:
            with self._cond:
                if index < journal.tail:  # another call's iterator read it meanwhile
                    return True
                if stop.is_set() or journal.ended or journal.failure is not None:
                    return False
            try:
                frame = next(self._frames)
                request = frame_request(frame, self._options)
            except StopIteration:
                request = None
            except BaseException as error:  # the caller's iterator failed: hand it to the reader
                with self._cond:
                    journal.failure = error
                    self._cond.notify_all()
                return False
            with self._cond:
                if request is None:
                    journal.ended = True
                elif isinstance(request, StreamResult):  # bad input found here: its error takes the frame's place
                    journal.add("local", request)
                else:
                    journal.add("sent", request)
                self._cond.notify_all()
            return request is not None

    def _read(self, call: Any) -> Iterator[StreamResult]:
        """Yields the results of the journal's head onward; returns the caller's
        iterator's error, if it failed; raises ClassifierError when the call did."""
        journal = self._journal
        while True:
            with self._cond:
                while not journal.entries and not journal.ended and journal.failure is None:
                    if call.done():
                        raise _call_error(call)
                    self._cond.wait(_POLL_S)
                entry = journal.entries[0] if journal.entries else None
                if entry is not None and entry[0] == "local":
                    journal.pop()
            if entry is None:
                if journal.failure is not None:
                    return journal.failure
                _finish(call)
                return None
            if entry[0] == "local":
                yield entry[1]
                continue
            try:
                response = next(call)
            except StopIteration:
                raise missing_answer(entry[1].request_id) from None
            except grpc.RpcError as error:
                raise ClassifierError.from_rpc_error(error) from None
            with self._cond:
                journal.pop()
            self._reopens.answered()
            yield stream_result(response)


def _call_error(call: Any) -> ClassifierError:
    """Why a call ended while the reader waited for a frame."""
    if call.code() != grpc.StatusCode.OK:
        return ClassifierError.from_rpc_error(call)
    return ended_early()


def _finish(call: Any) -> None:
    """Waits for the call's final status after the last answer; raises if it failed."""
    try:
        extra = next(call)
    except StopIteration:
        return
    except grpc.RpcError as error:
        failure = ClassifierError.from_rpc_error(error)
        if answer_failed(failure):
            raise failure from None
        return
    logger.warning("ignoring an answer past the last frame (request_id %r)", extra.request_id)
