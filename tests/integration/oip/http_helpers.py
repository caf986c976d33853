"""Helpers of the REST tests: a live server with --http-port 0, the v1 reference over
gRPC, and the binary-tensor extension framed by hand (struct/NumPy, not the server's code)."""
from __future__ import annotations

import json
import struct

import grpc
import numpy as np

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc

MODEL = "efficientnet_lite0"
HEADER = "Inference-Header-Content-Length"


def start(**config) -> BackgroundServer:
    """The built-in model (or the config's), gRPC and HTTP on free loopback ports."""
    return BackgroundServer(ServerConfig(host="127.0.0.1", port=0, http_port=0, **config)).start()


def base_url(server: BackgroundServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.app.http_port}"


def v1_probabilities(server: BackgroundServer, request: pb.ClassifyObjectRequest) -> np.ndarray:
    """Per ROI, every class's confidence (top_k = 0) from v1 ClassifyObject, by class index: (N, classes) FP32."""
    request.top_k, request.min_confidence = 0, 0.0
    with grpc.insecure_channel(server.address) as ch:
        reply = pb_grpc.ObjectClassifierStub(ch).ClassifyObject(request, timeout=60)
    rows = []
    for result in reply.results:
        row = np.zeros(len(result.confidences), np.float32)
        for c in result.confidences:
            row[c.class_index] = c.confidence
        rows.append(row)
    return np.stack(rows)


def v1_request(image: pb.Image, rois=()) -> pb.ClassifyObjectRequest:
    """rois: (x, y, width, height, angle) rows, the v1 geometry."""
    return pb.ClassifyObjectRequest(image=image, rois=[
        pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), width=w, height=h, angle=a))
        for x, y, w, h, a in rois])


def binary_body(doc: dict, blobs: list[bytes]) -> tuple[bytes, dict]:
    """A request in the binary-tensor extension: JSON, then the blobs; the headers to send."""
    head = json.dumps(doc).encode()
    return head + b"".join(blobs), {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def bytes_blob(items: list[bytes]) -> bytes:
    """BYTES elements as raw data: a 4-byte little-endian length before each."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def split_binary_response(body: bytes, header_length: str) -> tuple[dict, bytes]:
    n = int(header_length)
    return json.loads(body[:n]), body[n:]
