"""HTTP bodies of `POST .../infer` <-> InferRequest / InferResponse.

JSON tensors (`"data"`: flat or nested row-major lists; BYTES elements are
strings) and the binary-tensor extension: the body starts with
`Inference-Header-Content-Length` bytes of JSON, then the raw bytes of each
input whose `parameters.binary_data_size` says how many, in input order. A
response carries an output as raw bytes after its JSON header when the
output asks for `"binary_data": true` (or the request for
`"binary_data_output": true`); the header then says where the JSON ends.
Raw bytes are decoded by tensors.from_raw, the gRPC raw_input_contents' decoder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from roiclass.server.errors import InvalidArgument
from roiclass.server.oip import tensors
from roiclass.server.oip.core import InferRequest, InferResponse
from roiclass.server.oip.outputs import RequestedOutput
from roiclass.server.oip.tensors import Tensor

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"


def parse_infer(body: bytes, header_length: str | None, model: str, version: str) -> InferRequest:
    """An infer request; InvalidArgument names the field that is wrong."""
    header, binary = _split(body, header_length)
    doc = _json_object(header)
    inputs_doc = _list(doc, "inputs", required=True)
    if not inputs_doc:
        raise InvalidArgument.for_field("inputs", "is empty: give at least one input tensor")
    offset, inputs = 0, []
    for i, item in enumerate(inputs_doc):
        tensor, offset = _input(i, item, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidArgument.for_field(
            HEADER_LENGTH, f"{len(binary) - offset} bytes after the JSON header are not claimed by any "
                           f"input's binary_data_size (the inputs claim {offset}, the body has {len(binary)})")
    outputs = []
    for i, item in enumerate(_list(doc, "outputs")):
        where = f"outputs[{i}]"
        _check_object(item, where)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument.for_field(f"{where}.name", "is required: the name of an output tensor")
        outputs.append(RequestedOutput(name=name, parameters=_parameters(item, where)))
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidArgument.for_field("id", f"must be a string, not {type(request_id).__name__}")
    return InferRequest(model=model, version=version, id=request_id, inputs=inputs, outputs=outputs,
                        parameters=_parameters(doc, ""))


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 <= n <= len(body):
        raise InvalidArgument.for_field(
            HEADER_LENGTH, f"{header_length!r} must be an integer in 0..{len(body)} (the body's length)")
    return body[:n], body[n:]


def _json_object(data: bytes) -> dict:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument.for_field("body", f"is not valid JSON: {exc}") from None
    _check_object(doc, "body")
    return doc


def _check_object(value, where: str) -> None:
    if not isinstance(value, dict):
        raise InvalidArgument.for_field(where, f"must be a JSON object, not {type(value).__name__}")


def _list(doc: dict, key: str, required: bool = False) -> list:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise InvalidArgument.for_field(key, "is required: a list of tensors" if value is None
                                        else f"must be a list, not {type(value).__name__}")
    return value


def _parameters(doc: dict, where: str) -> dict:
    value = doc.get("parameters", {})
    if not isinstance(value, dict):
        raise InvalidArgument.for_field(f"{where}.parameters".lstrip("."), "must be a JSON object")
    return value


def _input(i: int, item, binary: bytes, offset: int) -> tuple[Tensor, int]:
    where = f"inputs[{i}]"
    _check_object(item, where)
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not name:
        raise InvalidArgument.for_field(f"{where}.name", "is required: the input tensor's name")
    where = f"inputs[{i}] ({name})"
    if datatype not in tensors.DATATYPES:
        raise InvalidArgument.for_field(f"{where}.datatype",
                                        f"{datatype!r} is not allowed; allowed: {tensors.DATATYPE_NAMES}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise InvalidArgument.for_field(f"{where}.shape", f"{shape!r} must be a list of integers >= 0")
    params = _parameters(item, where)
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
            raise InvalidArgument.for_field(
                f"{where}.parameters.binary_data_size",
                f"{size!r} must be an integer >= 0 within the {len(binary) - offset} binary bytes left")
        return tensors.from_raw(name, datatype, tuple(shape), binary[offset:offset + size]), offset + size
    if "data" not in item:
        raise InvalidArgument.for_field(f"{where}.data", "is required (or parameters.binary_data_size with "
                                                         "the bytes after the JSON header)")
    values = _flatten(item["data"], where, datatype == "BYTES")
    try:
        return tensors.from_list(name, datatype, tuple(shape), values), offset
    except (TypeError, ValueError, OverflowError) as exc:  # a value numpy cannot take as this datatype
        raise InvalidArgument.for_field(f"{where}.data", f"does not fit datatype {datatype}: {exc}") from None


def _flatten(data, where: str, as_bytes: bool) -> list:
    """Nested row-major lists -> one flat list; BYTES strings -> UTF-8 bytes."""
    if not isinstance(data, list):
        data = [data]
    flat: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            if isinstance(value, (dict, type(None))) or (as_bytes != isinstance(value, str)):
                allowed = "strings (BYTES)" if as_bytes else "numbers or booleans"
                raise InvalidArgument.for_field(f"{where}.data", f"holds {json.dumps(value)}: only {allowed}")
            flat.append(value.encode("utf-8") if as_bytes else value)
        else:
            stack.pop()
    return flat


@dataclass(frozen=True)
class EncodedResponse:
    body: bytes
    content_type: str
    header_length: int | None  # set: the binary-tensor extension's header


def encode_infer(response: InferResponse, request: InferRequest) -> EncodedResponse:
    all_binary = request.parameters.get("binary_data_output") is True
    wanted = {o.name: o.parameters for o in request.outputs}
    outputs, blobs = [], []
    for t in response.outputs:
        doc = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        params = {k: v for k, v in t.parameters.items() if k != "binary_data_size"}
        if wanted.get(t.name, {}).get("binary_data", all_binary) is True:
            raw = tensors.to_raw(t)
            blobs.append(raw)
            params["binary_data_size"] = len(raw)
        else:
            doc["data"] = _json_values(t)
        if params:
            doc["parameters"] = params
        outputs.append(doc)
    head = {"model_name": response.model, "model_version": response.version, "outputs": outputs}
    if response.id:
        head["id"] = response.id
    if response.parameters:
        head["parameters"] = response.parameters
    header = json.dumps(head, separators=(",", ":")).encode()
    if not blobs:
        return EncodedResponse(header, JSON_TYPE, None)
    return EncodedResponse(b"".join((header, *blobs)), BINARY_TYPE, len(header))


def _json_values(t: Tensor) -> list:
    values = t.data.reshape(-1).tolist()
    if t.datatype != "BYTES":
        return values
    try:
        return [bytes(v).decode("utf-8") for v in values]
    except UnicodeDecodeError:
        raise InvalidArgument.for_field(
            f"outputs ({t.name})", "holds bytes that are not UTF-8 text: ask for it with "
                                   "parameters.binary_data = true") from None
