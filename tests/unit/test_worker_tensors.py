"""workers.tensors: V2 requests to NumPy arrays, without lists or copies of binary data."""

import re
import struct

import msgspec
import numpy as np
import pytest

from workers.tensors import arguments
from workers.wire import BadEnvelope


def request(*inputs, binary=b""):
    head = msgspec.json.encode({"inputs": list(inputs)})
    return head + binary, len(head)


def test_binary_data_is_a_read_only_view_of_the_body():
    x = np.arange(12, dtype="<f8").reshape(3, 4)
    body, n = request({"name": "x", "shape": [3, 4], "datatype": "FP64",
                       "parameters": {"binary_data_size": x.nbytes}}, binary=x.tobytes())
    frame = memoryview(body)
    got = arguments(frame, n)["x"]
    assert got.shape == (3, 4) and got.dtype == np.float64 and np.array_equal(got, x)
    assert not got.flags.writeable and np.shares_memory(got, np.frombuffer(body, np.uint8))


def test_several_inputs_json_and_binary_bytes():
    words = b"".join(struct.pack("<I", len(w)) + w for w in (b"red", b"white"))
    body, n = request({"name": "a", "shape": [2, 2], "datatype": "INT32",
                       "data": [[1, 2], [3, 4]]},
                      {"name": "w", "shape": [2], "datatype": "BYTES",
                       "parameters": {"binary_data_size": len(words)}},
                      {"name": "s", "shape": [], "datatype": "FP32", "data": [1.5]},
                      binary=words)
    got = arguments(body, n)
    assert got["a"].dtype == np.int32 and got["a"].tolist() == [[1, 2], [3, 4]]
    assert got["w"].tolist() == ["red", "white"]
    assert got["s"].shape == () and float(got["s"]) == 1.5


@pytest.mark.parametrize("inputs, binary, message", [
    ([{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}], b"",
     "shape [2, 2]"),
    ([{"name": "x", "shape": [2], "datatype": "FP64",
       "parameters": {"binary_data_size": 16}}], b"\0" * 8, "does not fit"),
    ([{"name": "x", "shape": [3], "datatype": "FP64",
       "parameters": {"binary_data_size": 16}}], b"\0" * 16, "16 bytes of binary data for 3"),
    ([{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], b"\0", "belong to no"),
    ([{"name": "x", "shape": [1], "datatype": "BF16",
       "parameters": {"binary_data_size": 2}}], b"\0\0", "not supported"),
    ([{"name": "x", "shape": [1], "datatype": "FP64"}], b"", "has no data"),
    ([{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}] * 2, b"", "twice"),
    ([{"name": "x", "shape": [-1], "datatype": "FP64", "data": [1]}], b"", "whole numbers"),
    ([{"name": "x", "shape": [2], "datatype": "BYTES", "data": ["a", 1]}], b"", "BYTES"),
    ([{"name": "x", "shape": [0, 2**70], "datatype": "FP64",
       "parameters": {"binary_data_size": 0}}], b"", "cannot be made"),
    ([{"name": "x", "shape": [1] * 70, "datatype": "FP64", "data": [1]}], b"", "shape"),
])
def test_malformed_requests_say_what_is_wrong(inputs, binary, message):
    body, n = request(*inputs, binary=binary)
    with pytest.raises(BadEnvelope, match=re.escape(message)):
        arguments(body, n)


def test_not_json_is_a_bad_envelope():
    with pytest.raises(BadEnvelope, match="not valid JSON"):
        arguments(b"{nope", 5)
