"""roiclass's v2 endpoint from the bench's own load generator (bench/_load.py),
so that v1 and v2 can also be compared with the very same client: ModelInfer
with IMAGE + ROIS over grpc.aio, the output asked for with Triton's
classification extension (top-5 "score:index:label" strings, what v1's
top_k=5 answers), or as PROBABILITIES when top_k is 0."""
from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from roiclass.inference import grpc_service_pb2 as pb2, grpc_service_pb2_grpc as pb2_grpc

import _clients
import oip_check


def classify_request(model: str, image: np.ndarray, rois: np.ndarray, top_k: int):
    request = oip_check.infer_request(model, {"IMAGE": image, "ROIS": np.ascontiguousarray(rois, np.float32)})
    if top_k:
        request.outputs[0].parameters["classification"].CopyFrom(pb2.InferParameter(int64_param=top_k))
    return request


class V2Target:
    """Use inside a running event loop (the channel is bound to it)."""

    def __init__(self, port: int, model: str, image: np.ndarray, rois: np.ndarray, top_k: int = _clients.TOP_K):
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_clients._OPTIONS)
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)
        self.request = classify_request(model, image, rois, top_k)

    async def unary(self) -> Any:
        return await self.stub.ModelInfer(self.request, timeout=60)

    async def close(self) -> None:
        await self.channel.close()


def top1_of_classification(response) -> list[int]:
    """The first "score:index:label" string of each ROI's top-k (BYTES, 4-byte length prefixed)."""
    raw, out, labels = response.raw_output_contents[0], [], []
    while raw:
        n = int.from_bytes(raw[:4], "little")
        labels.append(raw[4:4 + n].decode())
        raw = raw[4 + n:]
    k = int(response.outputs[0].shape[-1])
    for i in range(0, len(labels), k):
        out.append(int(labels[i].split(":")[1]))
    return out
