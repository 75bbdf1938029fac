"""V2 inference requests made into NumPy arrays, in the worker, for ``tensors: numpy`` versions.

The gateway hands such a version the request as the client sent it (``workers.wire.Call`` with
``v2_json``): its JSON part, then any binary tensor data (Triton's binary extension). Each input
becomes the named argument of its name:

* binary data: ``numpy.frombuffer`` over the received frame, reshaped: no copy and no Python
  list. The array is read-only (it views the message); a function that writes into its input
  copies it first (``x.copy()``).
* JSON ``data`` (flat or nested): ``numpy.asarray`` of it with the tensor's dtype, reshaped.
* BYTES: an object array of ``str``.

Malformed requests raise :class:`workers.wire.BadEnvelope` (a 400, as for any body).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from workers.wire import BadEnvelope, bytes_elements, decode_json

DTYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
          "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
          "FP32": "<f4", "FP64": "<f8"}


class Input(msgspec.Struct, frozen=True):
    name: str
    shape: list[int]
    datatype: str
    data: Any = msgspec.UNSET
    parameters: dict[str, Any] = {}


class Request(msgspec.Struct, frozen=True):
    inputs: list[Input]


_decode = msgspec.json.Decoder(Request).decode


def arguments(body: bytes | memoryview, json_length: int) -> dict[str, Any]:
    """The named arguments of one V2 request: input name -> NumPy array."""
    view = memoryview(body)
    request = decode_json(_decode, view[:json_length], "the V2 inference request")
    named: dict[str, Any] = {}
    offset = json_length
    for tensor in request.inputs:
        where = f"input `{tensor.name}`"
        if tensor.name in named:
            raise BadEnvelope(f"input `{tensor.name}` is given twice")
        if any(type(d) is not int or d < 0 for d in tensor.shape):
            raise BadEnvelope(f"{where}: shape must be whole numbers >= 0")
        size = tensor.parameters.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(view):
                raise BadEnvelope(f"{where}: binary_data_size {size!r} does not fit the "
                                  f"{len(view) - offset} bytes left after the JSON")
            named[tensor.name] = _from_binary(view[offset:offset + size], tensor, where)
            offset += size
        elif tensor.data is msgspec.UNSET:
            raise BadEnvelope(f"{where} has no data")
        else:
            named[tensor.name] = _from_json(tensor, where)
    if offset != len(view):
        raise BadEnvelope(f"{len(view) - offset} bytes of binary data belong to no input")
    return named


def _from_binary(raw: memoryview, tensor: Input, where: str) -> Any:
    count = math.prod(tensor.shape)
    if tensor.datatype == "BYTES":
        items = bytes_elements(raw, count, where)
        return np.array(items, dtype=object).reshape(tensor.shape)
    dtype = DTYPES.get(tensor.datatype)
    if dtype is None:
        raise BadEnvelope(f"{where}: binary {tensor.datatype} is not supported; send FP32")
    itemsize = np.dtype(dtype).itemsize
    if len(raw) != count * itemsize:
        raise BadEnvelope(f"{where}: {len(raw)} bytes of binary data for {count} "
                          f"{tensor.datatype} values")
    try:
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(tensor.shape)
    except (ValueError, OverflowError):  # a shape numpy cannot make, such as [0, 2**70]
        raise BadEnvelope(f"{where}: shape {tensor.shape} cannot be made") from None


def _from_json(tensor: Input, where: str) -> Any:
    if tensor.datatype == "BYTES":
        dtype: Any = object
    else:
        dtype = DTYPES.get(tensor.datatype)
        if dtype is None:
            raise BadEnvelope(f"{where}: {tensor.datatype} is not supported; send FP32")
    try:
        array = np.asarray(tensor.data, dtype=dtype)
        if dtype is object and not all(type(v) is str for v in array.flat):
            raise TypeError
        return array.reshape(tensor.shape)
    except (TypeError, ValueError, OverflowError):
        raise BadEnvelope(f"{where}: data does not match its datatype {tensor.datatype} and "
                          f"shape {tensor.shape}") from None
