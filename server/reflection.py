"""Server reflection as grpc.reflection.v1 and v1alpha, from the same descriptor pool.

grpcio-reflection implements only v1alpha; newer tools (grpcurl, Postman) ask
v1 first. The two protocols are the same messages under another package, so
the v1 service is v1alpha's servicer with v1's name: its messages parse and
serialize byte for byte as v1alpha's. v1's descriptors are added to the
default pool (v1alpha's file, renamed), so reflection describes v1 as well.
"""
from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as alpha

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
ALPHA_SERVICE_NAME = reflection.SERVICE_NAME


def _register_v1_descriptors(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
        return  # registered already (by this function, or a grpcio-reflection that ships v1)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    alpha.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{alpha.DESCRIPTOR.package}.", f".{V1_PACKAGE}."
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.options.Clear()  # v1alpha's java/go package options
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old):]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old):]
            method.output_type = new + method.output_type[len(old):]
    pool.Add(proto)


def enable_server_reflection(service_names, server: grpc.aio.Server) -> None:
    """Both reflection services, each listing `service_names` and both reflection services."""
    _register_v1_descriptors(descriptor_pool.Default())
    names = (*service_names, V1_SERVICE_NAME, ALPHA_SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=alpha.ServerReflectionRequest.FromString,
        response_serializer=alpha.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": handler}),))
