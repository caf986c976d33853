"""ObjectClassifier servicer: protobuf -> ClassifyRequest -> pipeline (engine) -> protobuf.

Errors are raised as roiclass.server.errors exceptions; the error mapper
(roiclass.server.interceptors) turns them into statuses. In a stream each
frame's error becomes that frame's google.rpc.Status and the stream goes on.
"""
from __future__ import annotations

import asyncio
from contextlib import aclosing
import logging
import time
from collections.abc import AsyncIterator

import grpc

from roiclass.server.callers import caller_id
from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.errors import Unimplemented, status_code, status_from_exception
from roiclass.server.heatmap.service import HeatmapService
from roiclass.server.model_info import model_infos
from roiclass.server.observer import RequestObserver
from roiclass.server.pipeline.run import Pipeline
from roiclass.server.streams import in_order
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class ObjectClassifierServicer(pb_grpc.ObjectClassifierServicer):
    def __init__(self, engine, manager, limits: RequestLimits, stream_window: int = 64,
                 heatmaps: HeatmapService | None = None, observer: RequestObserver | None = None):
        self._engine = engine
        self._manager = manager
        self._limits = limits
        self._stream_window = stream_window
        self._heatmaps = heatmaps  # None: heatmap requests are UNIMPLEMENTED
        self._observer = observer  # counts each stream frame as one request
        self._pipeline = Pipeline(engine, manager, limits, heatmaps)

    async def ClassifyObject(self, request: pb.ClassifyObjectRequest, context) -> pb.ClassifyObjectResponse:
        return await self.classify(request, deadline=_deadline(context), caller=caller_id(context))

    async def ClassifyObjectStream(
        self, request_iterator: AsyncIterator[pb.ClassifyObjectRequest], context
    ) -> AsyncIterator[pb.ClassifyObjectStreamResponse]:
        # The call's deadline and caller are read once, while the call is live: a frame still
        # in work after the client went away must not touch the ended call (reading its
        # auth_context() then crashed the server process once, in CI).
        deadline, caller = _deadline(context), caller_id(context)
        # Frames are pipelined, answered in order, within the window (streams.py).
        frames = in_order(request_iterator, lambda request: self._frame(request, deadline, caller),
                          self._stream_window)
        async with aclosing(frames):
            async for response in frames:
                yield response

    async def _frame(self, request: pb.ClassifyObjectRequest, deadline: float | None,
                     caller: str) -> pb.ClassifyObjectStreamResponse:
        started = time.perf_counter()
        try:
            response = await self.classify(request, deadline=deadline, caller=caller)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the stream
            self._observe_frame(request, "", status_code(exc), started)
            return pb.ClassifyObjectStreamResponse(
                request_id=request.request_id, error=status_from_exception(exc, "ClassifyObjectStream")
            )
        self._observe_frame(request, response.model_version, grpc.StatusCode.OK, started)
        return pb.ClassifyObjectStreamResponse(request_id=request.request_id, response=response)

    def _observe_frame(self, request, version: str, code: grpc.StatusCode, started: float) -> None:
        """version: the one that answered ("" when the frame failed)."""
        if self._observer is not None:
            self._observer.observe(request.model, version, code.name, time.perf_counter() - started)

    async def classify(self, request: pb.ClassifyObjectRequest, *, deadline: float | None,
                       caller: str) -> pb.ClassifyObjectResponse:
        """One ClassifyObject without a gRPC context: the REST API's /v1/classify runs this
        same code (server/oip/http/classify.py). deadline: time.monotonic() seconds or None."""
        started_ns = time.perf_counter_ns()
        req = ClassifyRequest.from_proto(request, self._limits)
        if req.heatmap is not None and self._heatmaps is None:
            raise Unimplemented("create_relevance_heatmap is not implemented by this server")
        model = self._manager.resolve(req.model or self._manager.default_model, req.model_version)
        if req.heatmap is not None:
            self._heatmaps.validate(model.spec, req.heatmap)  # bad options fail before any work
        return await self._pipeline.classify(req, model, deadline=deadline, caller=caller,
                                             started_ns=started_ns)

    async def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=model_infos(self._manager.statuses()),
                                     default_model=self._manager.default_model)

    async def GetModel(self, request: pb.GetModelRequest, context) -> pb.ModelInfo:
        infos = model_infos(self._manager.statuses(), name=request.name, version=request.version)
        return infos[0]

    async def ReloadModels(self, request: pb.ReloadModelsRequest, context) -> pb.ListModelsResponse:
        await asyncio.get_running_loop().run_in_executor(None, self._manager.reload)
        return await self.ListModels(pb.ListModelsRequest(), context)


def _deadline(context) -> float | None:
    """The call's deadline in time.monotonic() seconds, None without one."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
