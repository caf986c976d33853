"""The protocol's tensors against NumPy's own byte layout (the reference)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from roiclass.server.errors import InvalidArgument
from roiclass.server.oip import tensors

NUMERIC = [n for n in tensors.DATATYPES if n != "BYTES"]


@pytest.mark.parametrize("name", NUMERIC)
def test_raw_round_trip_is_numpys_little_endian_layout(name):
    dt = tensors.DATATYPES[name]
    values = (np.arange(6) % 2 if name == "BOOL" else np.arange(6) * 3 + 1).astype(dt.dtype).reshape(2, 3)
    raw = values.astype(dt.dtype.newbyteorder("<")).tobytes()
    t = tensors.from_raw("T", name, [2, 3], raw)
    assert t.shape == (2, 3) and t.data.dtype == dt.dtype
    np.testing.assert_array_equal(t.data, values)
    assert tensors.to_raw(t) == raw
    assert len(raw) == 6 * dt.size


def test_bytes_raw_framing_round_trip():
    items = [b"", b"a", "\u00e9t\u00e9".encode(), bytes(range(256))]
    raw = b"".join(struct.pack("<I", len(b)) + b for b in items)
    t = tensors.from_raw("S", "BYTES", [2, 2], raw)
    assert t.data.shape == (2, 2) and list(t.data.ravel()) == items
    assert tensors.to_raw(t) == raw


@pytest.mark.parametrize("raw,match", [
    (struct.pack("<I", 5) + b"abc", "element 0 says 5 bytes but only 3 remain"),
    (struct.pack("<I", 1) + b"a", "end after 1 of 2 elements"),
    (struct.pack("<I", 1) + b"a" + struct.pack("<I", 0) + b"zz", "2 bytes past the 2 elements"),
])
def test_bad_bytes_framing_names_the_tensor(raw, match):
    with pytest.raises(InvalidArgument, match=f"^S: .*{match}"):
        tensors.from_raw("S", "BYTES", [2], raw)


def test_raw_size_must_match_the_shape():
    with pytest.raises(InvalidArgument,
                       match=r"^IMAGE: has 5 bytes of raw contents; shape \[2, 3\] of UINT8 needs 6 x 1 = 6$"):
        tensors.from_raw("IMAGE", "UINT8", [2, 3], b"12345")
    with pytest.raises(InvalidArgument, match=r"ROIS: shape \[-1, 5\] has a negative dimension"):
        tensors.from_raw("ROIS", "FP32", [-1, 5], b"")


def test_unknown_datatype_lists_the_allowed_ones():
    with pytest.raises(InvalidArgument, match="datatype 'FLOAT32' is not supported; supported: BOOL, UINT8"):
        tensors.from_list("X", "FLOAT32", [1], [1.0])


def test_from_list_takes_nested_and_flat_values():
    flat = tensors.from_list("X", "FP32", [2, 2], [1, 2.5, 3, 4])
    nested = tensors.from_list("X", "FP32", [2, 2], [[1, 2.5], [3, 4]])
    np.testing.assert_array_equal(flat.data, nested.data)
    assert flat.data.dtype == np.float32
    s = tensors.from_list("S", "BYTES", [2], ["ab", b"\x00c"])
    assert list(s.data) == [b"ab", b"\x00c"]


@pytest.mark.parametrize("datatype,values,match", [
    ("FP32", ["abc"], "not numbers"),
    ("FP32", [1e40], "outside the FP32 range"),
    ("INT8", [200], "outside -128..127"),
    ("UINT8", [-1], "outside 0..255"),
    ("INT32", [1.5], "not integers"),
    ("FP32", [[1, 2], [3]], "values are not FP32"),
    ("BYTES", [3], "element 0 is int"),
])
def test_from_list_refuses_values_that_do_not_fit(datatype, values, match):
    shape = [2, 2] if isinstance(values[0], list) else [1]
    with pytest.raises(InvalidArgument, match=f"^X: .*{match}"):
        tensors.from_list("X", datatype, shape, values)


def test_from_list_count_must_match_the_shape():
    with pytest.raises(InvalidArgument, match=r"X: has 3 values; shape \[2, 2\] needs 4"):
        tensors.from_list("X", "INT64", [2, 2], [1, 2, 3])


def test_tensor_of_names_the_datatype_of_an_array():
    assert tensors.Tensor.of("P", np.zeros((2, 3), np.float32)).datatype == "FP32"
    assert tensors.Tensor.of("I", np.zeros(2, np.uint8)).datatype == "UINT8"
    assert tensors.Tensor.of("S", np.array([b"a"], dtype=object)).datatype == "BYTES"
    assert tensors.to_list(tensors.Tensor.of("I", np.array([[1, 2]], np.int64))) == [1, 2]
