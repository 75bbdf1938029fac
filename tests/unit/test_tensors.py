"""V2 tensors to call bodies and results to tensors (gateway.tensors), without a server."""

import struct

import msgspec
import pytest

from gateway.errors import BadRequest
from gateway.tensors import call_body, outputs, tensor


def arguments(*inputs, binary=b""):
    header = msgspec.json.encode({"inputs": list(inputs)})
    length = str(len(header)) if binary else None
    _, body = call_body(header + binary, length)
    return msgspec.json.decode(body)["data"]


def tensor_of(name, shape, datatype, data):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_data_is_reshaped_by_shape_and_shape_empty_is_a_scalar():
    assert arguments(tensor_of("x", [2, 3], "INT64", [1, 2, 3, 4, 5, 6])) == {
        "x": [[1, 2, 3], [4, 5, 6]]}
    assert arguments(tensor_of("x", [], "INT64", [7])) == {"x": 7}
    assert arguments(tensor_of("x", [1], "INT64", [7])) == {"x": [7]}
    assert arguments(tensor_of("x", [2, 2], "FP32", [[1, 2], [3, 4]])) == {  # nested data
        "x": [[1.0, 2.0], [3.0, 4.0]]}
    assert arguments(tensor_of("x", [2, 0, 3], "FP64", [])) == {"x": [[], []]}
    assert arguments(tensor_of("a", [], "BYTES", ["t"]), tensor_of("b", [], "BOOL", [True])
                     ) == {"a": "t", "b": True}


def test_floating_datatypes_give_floats_to_the_function():
    body = call_body(msgspec.json.encode({"inputs": [tensor_of("x", [2], "FP64", [1, 2])]}),
                     None)[1]
    assert body == b'{"data":{"x":[1.0,2.0]}}'


def test_binary_inputs_follow_the_json_in_input_order():
    floats = struct.pack("<3f", 0.5, 1.5, -2.0)
    texts = b"".join(struct.pack("<I", len(t)) + t for t in (b"ab", "é".encode()))
    flags = bytes([1, 0])
    got = arguments(
        {"name": "f", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 12}},
        {"name": "s", "shape": [1, 2], "datatype": "BYTES",
         "parameters": {"binary_data_size": len(texts)}},
        {"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}},
        binary=floats + texts + flags)
    assert got == {"f": [0.5, 1.5, -2.0], "s": [["ab", "é"]], "b": [True, False]}


@pytest.mark.parametrize(("inputs", "binary", "fragment"), [
    ([tensor_of("x", [3], "FP64", [1, 2])], b"", "holds 3 values; data has 2"),
    ([tensor_of("x", [1], "INT64", [True])], b"", "does not match its datatype INT64"),
    ([tensor_of("x", [1], "FP64", [10**400])], b"", "too large for FP64"),
    ([tensor_of("x", [1], "BYTES", [1])], b"", "does not match its datatype BYTES"),
    ([tensor_of("x", [], "FP64", [1]), tensor_of("x", [], "FP64", [2])], b"", "given twice"),
    ([{"name": "x", "shape": [1], "datatype": "FP64"}], b"", "has no data"),
    ([{"name": "x", "shape": [1], "datatype": "BF16",
       "parameters": {"binary_data_size": 2}}], b"\0\0", "binary BF16 is not supported"),
    ([{"name": "x", "shape": [2], "datatype": "INT32",
       "parameters": {"binary_data_size": 4}}], b"\0\0\0\0", "4 bytes of binary data for 2"),
    ([{"name": "x", "shape": [1], "datatype": "INT8",
       "parameters": {"binary_data_size": 1}}], b"\0\0", "1 bytes of binary data belong to no"),
    ([{"name": "x", "shape": [1], "datatype": "BYTES",
       "parameters": {"binary_data_size": 5}}], b"\x09\0\0\0x", "malformed BYTES"),
    ([{"name": "x", "shape": [1], "datatype": "BYTES",
       "parameters": {"binary_data_size": 5}}], b"\1\0\0\0\xff", "must be UTF-8 text"),
])
def test_malformed_tensors_are_a_clear_400(inputs, binary, fragment):
    header = msgspec.json.encode({"inputs": inputs})
    with pytest.raises(BadRequest, match=fragment):
        call_body(header + binary, str(len(header)) if binary else None)


def test_a_header_length_that_does_not_fit_is_a_400():
    with pytest.raises(BadRequest, match="does not fit"):
        call_body(b'{"inputs": []}', "999")
    with pytest.raises(BadRequest, match="does not fit"):
        call_body(b'{"inputs": []}', "x")
    with pytest.raises(BadRequest, match="does not fit"):
        call_body(b'{"inputs": []}', "0")


@pytest.mark.parametrize(("value", "datatype", "shape", "data"), [
    (5, "INT64", [], [5]),
    (True, "BOOL", [], [True]),
    ([[1, 2.5]], "FP64", [1, 2], [1.0, 2.5]),
    ([1.5, None], "FP64", [2], [1.5, None]),
    (["a", None], "BYTES", [2], ["a", None]),
    ([], "FP64", [0], []),
    (2**70, "BYTES", [], ["1180591620717411303424"]),
    ([{"a": 1}, {"a": 2}], "BYTES", [2], ['{"a":1}', '{"a":2}']),
    ([1, "a", True], "BYTES", [3], ["1", "a", "true"]),
    ([[1], [1, 2]], "BYTES", [], ["[[1],[1,2]]"]),
    ([1, [2]], "BYTES", [], ["[1,[2]]"]),
])
def test_output_datatype_and_shape_are_inferred(value, datatype, shape, data):
    out = tensor("result", value)
    assert (out.datatype, out.shape, out.data) == (datatype, shape, data)


def test_a_dict_result_is_one_output_per_key_and_outputs_can_be_chosen():
    from gateway.tensors import RequestedOutput

    result = b'{"label": "x", "scores": [0.5, 0.25]}'
    assert [(o.name, o.datatype) for o in outputs(result, msgspec.UNSET)] == [
        ("label", "BYTES"), ("scores", "FP64")]
    assert [o.name for o in outputs(result, [RequestedOutput("scores")])] == ["scores"]
    with pytest.raises(BadRequest, match="no output named nope"):
        outputs(result, [RequestedOutput("nope")])
    deep = b"[" * 3000 + b"]" * 3000
    assert outputs(deep, msgspec.UNSET)[0].data == [deep.decode()]
