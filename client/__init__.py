"""roiclass.client: Python client for the roiclass ObjectClassifier service.

    from roiclass.client import AsyncClassifier, Classifier, Roi

    with Classifier("127.0.0.1:50051") as classifier:
        result = classifier.classify("cat.png", rois=[Roi(10, 20, 120, 80, angle=15)])

    async with AsyncClassifier("127.0.0.1:50051") as classifier:   # the asyncio twin
        result = await classifier.classify("cat.png", top_k=3)

The generated stubs are re-exported as `classifier_pb2` / `classifier_pb2_grpc`
for callers who want the raw protocol.
"""
from roiclass.v1 import classifier_pb2, classifier_pb2_grpc

from .aio import AsyncClassifier
from .classifier import DEFAULT_ADDRESS, Classifier
from .errors import ClassifierError, FieldViolation, InvalidInputError
from .images import CHANNEL_ORDERS, to_image_proto
from .messages import build_request
from .options import RequestOptions
from .security import TlsConfig
from .types import (
    Alignment,
    ClassifyResult,
    ClassScore,
    Frame,
    Heatmap,
    HeatmapOptions,
    InstanceInfo,
    ModelInfo,
    ModelList,
    ModelVersionInfo,
    Roi,
    RoiResult,
    StreamResult,
    Timing,
)

__all__ = [
    "Alignment",
    "AsyncClassifier",
    "CHANNEL_ORDERS",
    "ClassScore",
    "ClassifierError",
    "Classifier",
    "ClassifyResult",
    "DEFAULT_ADDRESS",
    "FieldViolation",
    "Frame",
    "Heatmap",
    "HeatmapOptions",
    "InstanceInfo",
    "InvalidInputError",
    "ModelInfo",
    "ModelList",
    "ModelVersionInfo",
    "RequestOptions",
    "Roi",
    "RoiResult",
    "StreamResult",
    "Timing",
    "TlsConfig",
    "build_request",
    "classifier_pb2",
    "classifier_pb2_grpc",
    "to_image_proto",
]
