"""inference.* protobuf messages <-> the core's dataclasses and JSON shapes."""
from __future__ import annotations

from google.protobuf import json_format

from roiclass.inference import grpc_service_pb2 as pb
from roiclass.inference import model_config_pb2 as mc
from roiclass.server.decoding import Undecodable
from roiclass.server.errors import InvalidArgument
from roiclass.server.oip import tensors
from roiclass.server.oip.core import InferRequest, InferResponse
from roiclass.server.oip.outputs import RequestedOutput

_PARAMETER_KINDS = ("bool_param", "int64_param", "string_param", "double_param", "uint64_param")


def parameters(params) -> dict:
    """map<string, InferParameter> -> {name: bool | int | str | float}."""
    out = {}
    for key, p in params.items():
        kind = p.WhichOneof("parameter_choice")
        out[key] = getattr(p, kind) if kind is not None else None
    return out


def _set_parameters(target, params: dict) -> None:
    for key, value in params.items():
        p = target[key]
        if isinstance(value, bool):
            p.bool_param = value
        elif isinstance(value, int):
            p.int64_param = value
        elif isinstance(value, float):
            p.double_param = value
        else:
            p.string_param = str(value)


def infer_request(msg: pb.ModelInferRequest) -> InferRequest:
    if isinstance(msg, Undecodable):  # a stream frame whose bytes did not parse
        raise msg.error()
    raw = msg.raw_input_contents
    if raw and len(raw) != len(msg.inputs):
        raise InvalidArgument.for_field(
            "raw_input_contents", f"has {len(raw)} entries for {len(msg.inputs)} inputs; send one per "
            f"input, in order, or none (then each input's contents)")
    inputs = []
    for i, t in enumerate(msg.inputs):
        params = parameters(t.parameters)
        if raw:
            if t.HasField("contents"):
                raise InvalidArgument.for_field(t.name, "has contents and raw_input_contents; send one")
            inputs.append(tensors.from_raw(t.name, t.datatype, t.shape, raw[i], params))
            continue
        field = tensors.datatype(t.datatype, t.name).contents
        if field is None:
            raise InvalidArgument.for_field(t.name, f"{t.datatype} has no typed contents; send it in "
                                                    f"raw_input_contents")
        values = getattr(t.contents, field)
        inputs.append(tensors.from_list(t.name, t.datatype, t.shape, list(values), params))
    return InferRequest(
        model=msg.model_name, version=msg.model_version, id=msg.id, inputs=inputs,
        outputs=[RequestedOutput(o.name, parameters(o.parameters)) for o in msg.outputs],
        parameters=parameters(msg.parameters),
    )


def infer_response(r: InferResponse) -> pb.ModelInferResponse:
    """Outputs travel in raw_output_contents, as Triton sends them."""
    msg = pb.ModelInferResponse(model_name=r.model, model_version=r.version, id=r.id)
    _set_parameters(msg.parameters, r.parameters)
    for t in r.outputs:
        out = msg.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
        _set_parameters(out.parameters, t.parameters)
        msg.raw_output_contents.append(tensors.to_raw(t))
    return msg


def model_metadata(d: dict) -> pb.ModelMetadataResponse:
    return json_format.ParseDict(d, pb.ModelMetadataResponse())


def model_config(d: dict) -> pb.ModelConfigResponse:
    return pb.ModelConfigResponse(config=json_format.ParseDict(d, mc.ModelConfig()))


def statistics(items: list[dict]) -> pb.ModelStatisticsResponse:
    return pb.ModelStatisticsResponse(model_stats=[json_format.ParseDict(d, pb.ModelStatistics()) for d in items])


def repository_index(items: list[dict]) -> pb.RepositoryIndexResponse:
    return pb.RepositoryIndexResponse(models=[pb.RepositoryIndexResponse.ModelIndex(**d) for d in items])


def load_files(parameters) -> dict[str, bytes]:
    """RepositoryModelLoad's parameters: Triton's `file:<path>` entries (bytes_param) are the
    model sent as files; `config` overrides are not supported (a model's config.toml is a file)."""
    files = {}
    for key, value in parameters.items():
        if not key.startswith("file:"):
            raise InvalidArgument.for_field(f"parameters.{key}", "is not supported; allowed: file:<path> "
                                            "(the model's files, bytes_param)")
        if value.WhichOneof("parameter_choice") != "bytes_param":
            raise InvalidArgument.for_field(f"parameters.{key}", "must be a bytes_param (the file's content)")
        files[key[len("file:"):]] = value.bytes_param
    return files
