"""Server reflection: a tool that knows nothing of roiclass can call it.

The descriptors are fetched over the wire with grpcio-reflection's client
into a fresh DescriptorPool; the request is built from them (never from the
roiclass.v1 modules) and sent with a generic channel method.
"""
from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "roiclass.v1.ObjectClassifier"
CAT_CLASSES = range(281, 286)  # ImageNet: tabby .. Egyptian cat


@pytest.fixture()
def reflected(server):
    with grpc.insecure_channel(server.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        yield channel, database, DescriptorPool(database)


def test_reflection_lists_the_services(reflected):
    _, database, _ = reflected
    services = set(database.get_services())
    assert {SERVICE, "grpc.health.v1.Health"} <= services, services


def test_reflection_describes_every_rpc(reflected):
    _, _, pool = reflected
    service = pool.FindServiceByName(SERVICE)
    methods = {m.name: m for m in service.methods}
    assert set(methods) == {
        "ClassifyObject", "ClassifyObjectStream", "ListModels", "GetModel", "ReloadModels"
    }
    stream = methods["ClassifyObjectStream"]
    assert stream.client_streaming and stream.server_streaming
    # The import of google/rpc/status.proto is served as well.
    assert pool.FindMessageTypeByName("google.rpc.Status").fields_by_name["code"].number == 1


def test_request_built_from_reflected_descriptors_is_answered(reflected, chelsea):
    channel, _, pool = reflected
    method = pool.FindServiceByName(SERVICE).methods_by_name["ClassifyObject"]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    assert method.input_type.file.pool is pool  # not the compiled-in roiclass.v1

    pixels = np.ascontiguousarray(chelsea, dtype=np.uint8)
    height, width, _ = pixels.shape
    rgb8 = pool.FindEnumTypeByName("roiclass.v1.PixelFormat").values_by_name["RGB8"].number
    request = request_class(request_id="reflected-1", top_k=3)
    request.image.raw.width = width
    request.image.raw.height = height
    request.image.raw.pixel_format = rgb8
    request.image.raw.pixels = pixels.tobytes()
    roi = request.rois.add(id="cat")
    roi.rect.origin.x, roi.rect.origin.y = 0.08 * width, 0.02 * height
    roi.rect.angle = 5.0
    roi.rect.width, roi.rect.height = 0.85 * width, 0.85 * height

    call = channel.unary_unary(
        f"/{SERVICE}/ClassifyObject",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = call(request, timeout=60)

    assert response.request_id == "reflected-1"
    assert len(response.results) == 1
    result = response.results[0]
    assert result.roi_id == "cat"
    assert result.class_index in CAT_CLASSES, result
    assert len(result.confidences) == 3
    assert result.confidences[0].class_index == result.class_index
