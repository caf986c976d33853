"""inference.GRPCInferenceService: protobuf -> the core's dataclasses -> the core
(InferenceProtocol) -> protobuf. Errors are roiclass.server.errors exceptions,
mapped by the same interceptors as ObjectClassifier's; in ModelStreamInfer a bad
request fails its own response (error_message) and the stream goes on.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from roiclass.inference import grpc_service_pb2 as pb
from roiclass.inference import grpc_service_pb2_grpc as pb_grpc
from roiclass.server.callers import caller_id
from roiclass.server.errors import RoiclassError, status_from_exception
from roiclass.server.oip import grpc_messages as messages
from roiclass.server.oip.core import InferenceProtocol
from roiclass.server.streams import in_order

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
SERVICE_NAME = SERVICE.full_name


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, protocol: InferenceProtocol, stream_window: int = 64):
        self._oip = protocol
        self._stream_window = stream_window  # stream requests in flight at once

    async def ServerLive(self, request, context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._oip.live())

    async def ServerReady(self, request, context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._oip.ready())

    async def ModelReady(self, request, context) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._oip.model_ready(request.name, request.version))

    async def ServerMetadata(self, request, context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self._oip.server_metadata())

    async def ModelMetadata(self, request, context) -> pb.ModelMetadataResponse:
        return messages.model_metadata(self._oip.model_metadata(request.name, request.version))

    async def ModelConfig(self, request, context) -> pb.ModelConfigResponse:
        return messages.model_config(self._oip.model_config(request.name, request.version))

    async def ModelStatistics(self, request, context) -> pb.ModelStatisticsResponse:
        return messages.statistics(self._oip.statistics(request.name, request.version))

    async def RepositoryIndex(self, request, context) -> pb.RepositoryIndexResponse:
        return messages.repository_index(self._oip.repository_index(request.ready))

    async def RepositoryModelLoad(self, request, context) -> pb.RepositoryModelLoadResponse:
        await self._oip.load(request.model_name, messages.load_files(request.parameters))
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request, context) -> pb.RepositoryModelUnloadResponse:
        await self._oip.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    async def ModelInfer(self, request, context) -> pb.ModelInferResponse:
        return await self._infer(request, context)

    async def _infer(self, request, context) -> pb.ModelInferResponse:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        response = await self._oip.infer(messages.infer_request(request), deadline=deadline,
                                         caller=caller_id(context))
        return messages.infer_response(response)

    async def ModelStreamInfer(self, request_iterator: AsyncIterator[pb.ModelInferRequest],
                               context) -> AsyncIterator[pb.ModelStreamInferResponse]:
        # Requests are pipelined, answered in order, within the window (server/streams.py).
        responses = in_order(request_iterator, lambda request: self._stream_one(request, context),
                             self._stream_window)
        async with aclosing(responses):
            async for response in responses:
                yield response

    async def _stream_one(self, request, context) -> pb.ModelStreamInferResponse:
        try:
            return pb.ModelStreamInferResponse(infer_response=await self._infer(request, context))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the stream
            message = str(exc) if isinstance(exc, RoiclassError) else status_from_exception(
                exc, "ModelStreamInfer").message
            # The request's id tells the client which one failed (Triton sends it too).
            return pb.ModelStreamInferResponse(
                error_message=message,
                infer_response=pb.ModelInferResponse(model_name=getattr(request, "model_name", ""),
                                                     id=getattr(request, "id", "")))
