"""The protocol's tensors: the one datatype table and the conversions both the
gRPC and the HTTP side use (raw little-endian bytes, typed/JSON value lists).

Every check raises InvalidArgument naming the tensor and what is allowed.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from roiclass.server.errors import InvalidArgument


class Datatype(NamedTuple):
    dtype: np.dtype  # little-endian; BYTES: object (each element a bytes)
    size: int  # bytes per element; 0 for BYTES (4-byte length prefix + bytes each)
    contents: str | None  # the gRPC InferTensorContents field; None: raw contents only


DATATYPES: dict[str, Datatype] = {
    "BOOL": Datatype(np.dtype(np.bool_), 1, "bool_contents"),
    "UINT8": Datatype(np.dtype("u1"), 1, "uint_contents"),
    "UINT16": Datatype(np.dtype("<u2"), 2, "uint_contents"),
    "UINT32": Datatype(np.dtype("<u4"), 4, "uint_contents"),
    "UINT64": Datatype(np.dtype("<u8"), 8, "uint64_contents"),
    "INT8": Datatype(np.dtype("i1"), 1, "int_contents"),
    "INT16": Datatype(np.dtype("<i2"), 2, "int_contents"),
    "INT32": Datatype(np.dtype("<i4"), 4, "int_contents"),
    "INT64": Datatype(np.dtype("<i8"), 8, "int64_contents"),
    "FP16": Datatype(np.dtype("<f2"), 2, None),
    "FP32": Datatype(np.dtype("<f4"), 4, "fp32_contents"),
    "FP64": Datatype(np.dtype("<f8"), 8, "fp64_contents"),
    "BYTES": Datatype(np.dtype(object), 0, "bytes_contents"),
}
DATATYPE_NAMES = ", ".join(DATATYPES)
_BY_DTYPE = {dt.dtype: name for name, dt in DATATYPES.items() if name != "BYTES"}
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray  # already shaped; BYTES: an object array of bytes
    parameters: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, array: np.ndarray, parameters: dict | None = None) -> "Tensor":
        """A tensor of a NumPy array (its datatype from the array's dtype; object -> BYTES)."""
        array = np.asarray(array)
        datatype = "BYTES" if array.dtype == object else _BY_DTYPE.get(array.dtype.newbyteorder("<"))
        if datatype is None:
            raise ValueError(f"tensor {name}: no protocol datatype for NumPy {array.dtype}")
        return cls(name, datatype, tuple(array.shape), array, dict(parameters or {}))


def datatype(name: str, tensor: str) -> Datatype:
    dt = DATATYPES.get(name)
    if dt is None:
        raise InvalidArgument.for_field(tensor, f"datatype {name!r} is not supported; supported: {DATATYPE_NAMES}")
    return dt


def check_shape(name: str, shape) -> tuple[int, ...]:
    """The shape as a tuple of ints >= 0."""
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field(name, f"shape {shape!r} must be a list of integers") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument.for_field(name, f"shape {list(dims)} has a negative dimension")
    return dims


def from_raw(name: str, datatype_name: str, shape, raw: bytes, parameters: dict | None = None) -> Tensor:
    """Raw little-endian row-major bytes (gRPC raw_input_contents, HTTP binary data) -> Tensor.
    Numeric tensors are read-only views of `raw` (no copy)."""
    dt = datatype(datatype_name, name)
    dims = check_shape(name, shape)
    count = math.prod(dims)
    if datatype_name == "BYTES":
        data = _split_bytes(name, raw, count).reshape(dims)
    else:
        expected = count * dt.size
        if len(raw) != expected:
            raise InvalidArgument.for_field(
                name, f"has {len(raw)} bytes of raw contents; shape {list(dims)} of {datatype_name} "
                f"needs {count} x {dt.size} = {expected}")
        data = np.frombuffer(raw, dtype=dt.dtype).reshape(dims)
    return Tensor(name, datatype_name, dims, data, dict(parameters or {}))


def _split_bytes(name: str, raw: bytes, count: int) -> np.ndarray:
    out = np.empty(count, dtype=object)
    view, pos = memoryview(raw), 0
    for i in range(count):
        if pos + 4 > len(raw):
            raise InvalidArgument.for_field(
                name, f"BYTES raw contents end after {i} of {count} elements (each: a 4-byte "
                f"little-endian length, then the bytes)")
        (n,) = _LENGTH.unpack_from(raw, pos)
        if pos + 4 + n > len(raw):
            raise InvalidArgument.for_field(
                name, f"BYTES element {i} says {n} bytes but only {len(raw) - pos - 4} remain")
        out[i] = bytes(view[pos + 4:pos + 4 + n])
        pos += 4 + n
    if pos != len(raw):
        raise InvalidArgument.for_field(name, f"BYTES raw contents hold {len(raw) - pos} bytes past "
                                              f"the {count} elements of its shape")
    return out


def to_raw(tensor: Tensor) -> bytes:
    """The inverse of from_raw."""
    if tensor.datatype == "BYTES":
        parts = []
        for item in tensor.data.ravel():
            b = item.encode() if isinstance(item, str) else bytes(item)
            parts += (_LENGTH.pack(len(b)), b)
        return b"".join(parts)
    dt = DATATYPES[tensor.datatype].dtype
    return np.ascontiguousarray(tensor.data, dtype=dt).tobytes()


def from_list(name: str, datatype_name: str, shape, values, parameters: dict | None = None) -> Tensor:
    """Typed contents (gRPC) or JSON "data" (flat or nested lists) -> Tensor; BYTES values
    may be str (UTF-8 encoded) or bytes."""
    dt = datatype(datatype_name, name)
    dims = check_shape(name, shape)
    count = math.prod(dims)
    if datatype_name == "BYTES":
        flat = np.empty(count, dtype=object)
        items = list(_flatten(values))
        if len(items) != count:
            raise _count_error(name, len(items), dims, count)
        for i, v in enumerate(items):
            if isinstance(v, str):
                v = v.encode()
            elif not isinstance(v, (bytes, bytearray, memoryview)):
                raise InvalidArgument.for_field(name, f"element {i} is {type(v).__name__}; BYTES "
                                                      f"elements are strings")
            flat[i] = bytes(v)
        return Tensor(name, datatype_name, dims, flat.reshape(dims), dict(parameters or {}))
    try:
        arr = np.asarray(values)
        if arr.dtype == object or (arr.dtype.kind in "USV"):
            raise ValueError("not numbers")
        if dt.dtype.kind in "iub" and arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError("not integers")
        if dt.dtype.kind in "iu" and arr.size:
            info = np.iinfo(dt.dtype)
            if arr.min() < info.min or arr.max() > info.max:
                raise OverflowError(f"outside {info.min}..{info.max}")
        with np.errstate(over="ignore"):
            data = arr.astype(dt.dtype)
        if dt.dtype.kind == "f" and np.any(np.isinf(data) & np.isfinite(arr)):
            raise OverflowError(f"a value is outside the {datatype_name} range")
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgument.for_field(name, f"values are not {datatype_name} ({exc})") from None
    if data.size != count:
        raise _count_error(name, data.size, dims, count)
    return Tensor(name, datatype_name, dims, data.reshape(dims), dict(parameters or {}))


def to_list(tensor: Tensor) -> list:
    """Flat row-major values: numbers, or bytes for BYTES (the gRPC typed contents; HTTP decodes them)."""
    return list(tensor.data.ravel()) if tensor.datatype == "BYTES" else tensor.data.ravel().tolist()


def _flatten(values):
    if isinstance(values, (list, tuple)):
        for v in values:
            yield from _flatten(v)
    elif isinstance(values, np.ndarray):
        yield from values.ravel()
    else:
        yield values


def _count_error(name: str, got: int, dims: tuple[int, ...], count: int) -> InvalidArgument:
    return InvalidArgument.for_field(name, f"has {got} values; shape {list(dims)} needs {count}")
