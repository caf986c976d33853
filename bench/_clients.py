"""What one benchmark call is, for each server: a pre-built request sent with
a grpc.aio stub (serialization still happens per call), plus a sync path with
the roiclass Python client for comparison.

Both servers get the same payload: the raw RGB pixels of one image and the
same rotated ROIs, answered with the top-5 classes per ROI.
"""
from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np

from roiclass.client import Classifier, build_request
from roiclass.v1 import classifier_pb2_grpc

TOP_K = 5
_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


class RoiclassTarget:
    """roiclass over loopback gRPC: unary calls and streams (use inside a loop)."""

    def __init__(self, port: int, model: str, image: np.ndarray, rois: np.ndarray):
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
        self.stub = classifier_pb2_grpc.ObjectClassifierStub(self.channel)
        self.request = build_request(image, [tuple(r) for r in rois], model=model, top_k=TOP_K)

    async def unary(self) -> Any:
        return await self.stub.ClassifyObject(self.request, timeout=60)

    def open_stream(self) -> Any:
        return self.stub.ClassifyObjectStream(timeout=120)

    @staticmethod
    def stream_error(response: Any) -> str:
        return response.error.message if response.HasField("error") else ""

    async def top1(self) -> list[int]:
        response = await self.unary()
        return [r.class_index for r in response.results]

    async def close(self) -> None:
        await self.channel.close()


class KServeTarget:
    """The KServe model server over the Open Inference Protocol (v2) gRPC."""

    def __init__(self, port: int, model: str, image: np.ndarray, rois: np.ndarray, v2):
        pb2, pb2_grpc = v2
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)
        tensor = pb2.ModelInferRequest.InferInputTensor
        rois32 = np.ascontiguousarray(rois, np.float32)
        self.request = pb2.ModelInferRequest(
            model_name=model,
            inputs=[tensor(name="image", datatype="UINT8", shape=list(image.shape)),
                    tensor(name="rois", datatype="FP32", shape=list(rois32.shape))],
            raw_input_contents=[np.ascontiguousarray(image).tobytes(), rois32.tobytes()],
        )

    async def unary(self) -> Any:
        return await self.stub.ModelInfer(self.request, timeout=60)

    async def top1(self) -> list[int]:
        response = await self.unary()
        names = [o.name for o in response.outputs]
        raw = response.raw_output_contents[names.index("class_index")]
        return np.frombuffer(raw, np.int64).reshape(-1, TOP_K)[:, 0].tolist()

    async def close(self) -> None:
        await self.channel.close()


def sync_client_latencies(port: int, model: str, image: np.ndarray, rois: np.ndarray,
                          duration: float, warmup: float) -> list[float]:
    """Concurrency 1 with roiclass.client.Classifier (blocking), the way a
    script would call it: latencies (s) of the calls in the measured window."""
    latencies: list[float] = []
    roi_list = [tuple(float(v) for v in r) for r in rois]
    with Classifier(f"127.0.0.1:{port}", timeout=60) as classifier:
        t0 = time.perf_counter() + warmup
        t1 = t0 + duration
        while True:
            s = time.perf_counter()
            classifier.classify(image, roi_list, model=model, top_k=TOP_K)
            e = time.perf_counter()
            if e > t1:
                break
            if s >= t0:
                latencies.append(e - s)
    return latencies
