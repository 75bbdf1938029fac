"""V2 tensors (Open Inference Protocol, JSON) to model-call bodies, and results back to tensors.

Each input tensor becomes the named argument of its name, its flat ``data`` reshaped to nested
lists by ``shape``: shape ``[]`` is a scalar, ``[1]`` stays a one-element list, as the shape
says. ``data`` may also be nested (V2 allows it), and inputs may come as raw little-endian bytes
after the JSON (Triton's binary extension, what ``tritonclient`` sends by default); BF16 bytes
and shared memory are refused with 400. Results come back as JSON tensors: one output named
``result`` (a dict result: one output per key) whose datatype and shape are inferred: BOOL,
INT64, FP64 (numbers mixed with null too; null is NaN for NumPy) and BYTES (text); anything
else (ragged lists, records, mixed kinds) comes as BYTES holding JSON text. Pure functions: the
HTTP side is :mod:`gateway.web.routes.v2`.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated, Any, Literal

import msgspec

from gateway.errors import BadRequest
from workers.wire import BadEnvelope, bytes_elements, decode_json

Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                   "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES"]
MAX_DIMS = 32
MAX_INPUTS = 1024
# What building the arguments may cost, counted in cells (a value, or a list that reshaping
# builds), for all inputs together: at most this many per byte of the body, plus a floor, so
# a small body cannot describe a huge (or a huge empty) tensor. Checked before any work.
CELLS_PER_BODY_BYTE = 4
MIN_CELLS = 65536
INT64 = (-(2**63), 2**63 - 1)
BINARY = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b",
          "INT16": "h", "INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"}


class InferInput(msgspec.Struct, frozen=True):
    """One input tensor; ``data`` is absent when ``parameters.binary_data_size`` says where its
    bytes are."""

    name: str
    shape: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(max_length=MAX_DIMS)]
    datatype: Datatype
    data: list[Any] | msgspec.UnsetType = msgspec.UNSET
    parameters: dict[str, Any] = {}


class RequestedOutput(msgspec.Struct, frozen=True):
    name: str
    parameters: dict[str, Any] = {}  # e.g. binary_data: outputs are JSON whatever it says


class InferRequest(msgspec.Struct, frozen=True):
    inputs: Annotated[list[InferInput], msgspec.Meta(max_length=MAX_INPUTS)]
    id: str | msgspec.UnsetType = msgspec.UNSET
    parameters: dict[str, Any] = {}  # e.g. binary_data_output: ignored, answers are JSON
    outputs: list[RequestedOutput] | msgspec.UnsetType = msgspec.UNSET


class InferOutput(msgspec.Struct, frozen=True):
    name: str
    datatype: Datatype
    shape: list[int]
    data: list[Any]


class InferResponse(msgspec.Struct, frozen=True):
    model_name: str
    model_version: str
    id: str
    outputs: list[InferOutput]


_encode = msgspec.json.Encoder().encode
_decode_request = msgspec.json.Decoder(InferRequest).decode
_decode_result = msgspec.json.Decoder().decode


# ---------------------------------------------------------------------- requests -> call body


def json_part_size(body_size: int, header_length: str | None) -> int:
    """The length of a V2 body's JSON part: ``Inference-Header-Content-Length`` when binary
    tensor data follows it (Triton's binary extension), else the whole body."""
    if header_length is None:
        return body_size
    try:
        size = int(header_length)
    except ValueError:
        size = -1
    if not 0 < size <= body_size:
        raise BadRequest(f"Inference-Header-Content-Length {header_length!r} does not fit "
                         f"a body of {body_size} bytes")
    return size


def call_body(raw: bytes, header_length: str | None) -> tuple[InferRequest, bytes]:
    """The decoded V2 request and the ``{"data": {...}}`` body the worker takes."""
    binary = b""
    if header_length is not None:
        size = json_part_size(len(raw), header_length)
        raw, binary = raw[:size], raw[size:]
    try:
        request = decode_json(_decode_request, raw, "the V2 inference request")
    except BadEnvelope as exc:
        raise BadRequest(str(exc)) from None
    _check_cost(request.inputs, len(raw) + len(binary))
    arguments: dict[str, Any] = {}
    offset = 0
    for tensor in request.inputs:
        if tensor.name in arguments:
            raise BadRequest(f"input `{tensor.name}` is given twice")
        values, offset = _values(tensor, binary, offset)
        arguments[tensor.name] = _reshape(values, tensor.shape)
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    return request, _encode({"data": arguments})


def cells(shape: list[int]) -> int:
    """What building a tensor of ``shape`` costs: its values plus every list that reshaping
    makes (``[n, 1, 1]`` is n values in 2n lists, ``[n, 0]`` no value in n lists), plus 1."""
    total, lists = 1, 1
    for dim in shape:
        lists *= dim
        total += lists
        if lists == 0:
            break
    return total


def _check_cost(inputs: list[InferInput], body_bytes: int) -> None:
    """Refuse, before anything is built, a request whose tensors would cost more than its
    body's budget (see ``CELLS_PER_BODY_BYTE``)."""
    budget = MIN_CELLS + CELLS_PER_BODY_BYTE * body_bytes
    total = 0
    for tensor in inputs:
        total += cells(tensor.shape)
        if total > budget:
            raise BadRequest(f"input `{tensor.name}`: shape {tensor.shape} (with the inputs "
                             f"before it) describes {total} values and nested lists, more "
                             f"than a body of {body_bytes} bytes may ({budget}); send smaller "
                             "tensors")


def _values(tensor: InferInput, binary: bytes, offset: int) -> tuple[list[Any], int]:
    """The tensor's flat values (checked against its datatype and shape), and the offset of
    the next input's binary data."""
    where = f"input `{tensor.name}`"
    if "shared_memory_region" in tensor.parameters:
        raise BadRequest(f"{where}: shared memory is not supported; send the data")
    size = tensor.parameters.get("binary_data_size")
    count = math.prod(tensor.shape)
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise BadRequest(f"{where}: binary_data_size {size!r} does not fit the "
                             f"{len(binary) - offset} bytes left after the JSON")
        if tensor.data is not msgspec.UNSET:
            raise BadRequest(f"{where}: give data or binary_data_size, not both")
        values = _from_binary(binary[offset:offset + size], tensor.datatype, count, where)
        return values, offset + size
    if tensor.data is msgspec.UNSET:
        raise BadRequest(f"{where} has no data")
    values = _flatten(tensor.data, count, where)
    if len(values) != count:
        raise BadRequest(f"{where}: shape {tensor.shape} holds {count} values; "
                         f"data has {len(values)}")
    return _checked(values, tensor.datatype, where), offset


def _flatten(data: list[Any], count: int, where: str) -> list[Any]:
    """V2 allows nested ``data`` as well as flat (row-major either way). One pass, which stops
    as soon as the data is nested deeper than ``MAX_DIMS`` or holds more than ``count``
    values."""
    if not any(type(v) is list for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                if len(stack) >= MAX_DIMS:
                    raise BadRequest(f"{where}: data is nested deeper than {MAX_DIMS} levels")
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
            if len(flat) > count:
                raise BadRequest(f"{where}: data holds more than the {count} values of its "
                                 "shape")
    return flat


def _checked(values: list[Any], datatype: str, where: str) -> list[Any]:
    if datatype == "BOOL":
        ok = all(type(v) is bool for v in values)
    elif datatype == "BYTES":
        ok = all(type(v) is str for v in values)
    elif datatype.startswith(("INT", "UINT")):
        ok = all(type(v) is int for v in values)
    else:  # FP16, FP32, FP64, BF16: JSON integers are fine, the function gets floats
        if not all(type(v) in (int, float) for v in values):
            raise BadRequest(f"{where}: {datatype} data must be numbers")
        try:
            return [float(v) for v in values]
        except OverflowError:  # a JSON integer with hundreds of digits
            raise BadRequest(f"{where}: a number is too large for {datatype}") from None
    if not ok:
        raise BadRequest(f"{where}: data does not match its datatype {datatype}")
    return values


def _from_binary(raw: bytes, datatype: str, count: int, where: str) -> list[Any]:
    if datatype == "BYTES":
        try:
            return list(bytes_elements(raw, count, where))
        except BadEnvelope as exc:
            raise BadRequest(str(exc)) from None
    code = BINARY.get(datatype)
    if code is None:
        raise BadRequest(f"{where}: binary {datatype} is not supported; send FP32")
    if len(raw) != count * struct.calcsize(code):
        raise BadRequest(f"{where}: {len(raw)} bytes of binary data for {count} {datatype} "
                         "values")
    return list(struct.unpack(f"<{count}{code}", raw))


def _reshape(values: list[Any], shape: list[int]) -> Any:
    if not shape:
        return values[0]
    if 0 in shape:  # its cost was checked (``cells``)
        return _empty(shape)
    for dim in reversed(shape[1:]):
        values = [values[i:i + dim] for i in range(0, len(values), dim)]
    return values


def _empty(shape: list[int]) -> list[Any]:
    return [] if shape[0] == 0 or len(shape) == 1 else [_empty(shape[1:])
                                                        for _ in range(shape[0])]


# ---------------------------------------------------------------------- result -> outputs


def outputs(result: bytes, requested: list[RequestedOutput] | msgspec.UnsetType
            ) -> list[InferOutput]:
    """The function's JSON result as V2 output tensors."""
    try:
        value = _decode_result(result)
        named = value if type(value) is dict else {"result": value}
        tensors = {name: tensor(name, v) for name, v in named.items()}
    except RecursionError:  # too deep to take apart: the whole result, as JSON text
        tensors = {"result": InferOutput("result", "BYTES", [], [result.decode()])}
    if requested is msgspec.UNSET:
        return list(tensors.values())
    missing = [o.name for o in requested if o.name not in tensors]
    if missing:
        raise BadRequest(f"no output named {', '.join(missing)}; the function returned "
                         f"{', '.join(tensors) or 'none'}")
    return [tensors[o.name] for o in requested]


def tensor(name: str, value: Any) -> InferOutput:
    """One output: nested lists of one kind become a typed tensor of their shape."""
    shape = _shape(value)
    if shape is None:  # ragged: one BYTES element holding the value's JSON
        return InferOutput(name, "BYTES", [], [_encode(value).decode()])
    flat = [value]
    for _ in shape:
        flat = [x for row in flat for x in row]
    kinds = set(map(type, flat))
    ints_fit = int not in kinds or all(INT64[0] <= v <= INT64[1] for v in flat if type(v) is int)
    if kinds == {bool}:
        return InferOutput(name, "BOOL", shape, flat)
    if kinds == {int} and ints_fit:
        return InferOutput(name, "INT64", shape, flat)
    if kinds <= {int, float, type(None)} and ints_fit:
        return InferOutput(name, "FP64", shape,
                           [float(v) if type(v) is int else v for v in flat])
    if kinds <= {str, type(None)}:
        return InferOutput(name, "BYTES", shape, flat)
    return InferOutput(name, "BYTES", shape,
                       [v if type(v) is str else _encode(v).decode() for v in flat])


def _shape(value: Any) -> list[int] | None:
    """The shape of nested lists (``[]`` for a scalar), or None when they are ragged."""
    if type(value) is not list:
        return []
    if not value:
        return [0]
    inner = _shape(value[0])
    if inner is None or any(_shape(v) != inner for v in value[1:]):
        return None
    return [len(value), *inner]
