"""Before timing: do the three sides answer the same payload alike?

roiclass v1 (ClassifyObject, top-5 per ROI), roiclass v2 (ModelInfer,
PROBABILITIES) and the Triton peer (ModelInfer) get the same image and ROIs;
v2 must equal v1 (the same engine: bit-identical top-5), the peer (its own cv2
crop, the same ONNX model) must agree on the top-1 class of each ROI.
"""
from __future__ import annotations

import grpc
import numpy as np

from roiclass.client import build_request
from roiclass.inference import grpc_service_pb2 as pb2, grpc_service_pb2_grpc as pb2_grpc
from roiclass.v1 import classifier_pb2_grpc

TOP_K = 5


def infer_request(model: str, tensors: dict[str, np.ndarray], output: str = "PROBABILITIES"):
    names = {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32"}
    inputs = [pb2.ModelInferRequest.InferInputTensor(name=n, datatype=names[a.dtype], shape=list(a.shape))
              for n, a in tensors.items()]
    return pb2.ModelInferRequest(model_name=model, inputs=inputs,
                                 outputs=[pb2.ModelInferRequest.InferRequestedOutputTensor(name=output)],
                                 raw_input_contents=[np.ascontiguousarray(a).tobytes() for a in tensors.values()])


def v2_probabilities(port: int, model: str, tensors: dict[str, np.ndarray]) -> np.ndarray:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(infer_request(model, tensors), timeout=60)
    out = response.outputs[0]
    return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(tuple(out.shape))


def model_config(port: int, model: str):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb2_grpc.GRPCInferenceServiceStub(channel)
        return (stub.ModelConfig(pb2.ModelConfigRequest(name=model), timeout=10).config,
                stub.ModelMetadata(pb2.ModelMetadataRequest(name=model), timeout=10))


def v1_top(port: int, model: str, image: np.ndarray, rois: np.ndarray) -> list[list[tuple[int, float]]]:
    request = build_request(image, [tuple(r) for r in rois], model=model, top_k=TOP_K)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = classifier_pb2_grpc.ObjectClassifierStub(channel).ClassifyObject(request, timeout=60)
    return [[(c.class_index, c.confidence) for c in r.confidences] for r in response.results]


def top_of(probabilities: np.ndarray) -> list[list[tuple[int, float]]]:
    rows = probabilities.reshape(-1, probabilities.shape[-1])
    order = np.argsort(-rows, axis=1, kind="stable")[:, :TOP_K]
    return [[(int(i), float(row[i])) for i in idx] for row, idx in zip(rows, order)]


def compare(v1: list, v2: np.ndarray | None, peer: np.ndarray | None) -> dict:
    """What the results file records about agreement (the bench goes on either way)."""
    out: dict = {"v1_top1": [r[0][0] for r in v1]}
    if v2 is not None:
        out["v2_top5_equals_v1"] = top_of(v2) == v1
        out["v2_top1"] = [r[0][0] for r in top_of(v2)]
    if peer is not None:
        out["triton_top1"] = [r[0][0] for r in top_of(peer)]
        out["triton_top1_equals_v1"] = out["triton_top1"] == out["v1_top1"]
        if v2 is not None:
            out["triton_vs_v2_max_abs_diff"] = round(float(np.abs(peer.reshape(v2.shape) - v2).max()), 5)
    return out
