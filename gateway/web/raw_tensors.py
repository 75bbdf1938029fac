"""V2 inference requests handed, as the client sent them, to ``tensors: numpy`` versions.

Such a version gets its V2 calls as NumPy arrays made in the worker (``workers.tensors``), so the
gateway neither parses nor copies the tensors: it reads the request's JSON part only for what
the answer needs (``id``, the requested ``outputs``) and for the 400s of a body that is not a V2
request, and forwards the body with the length of that JSON part. Everything about the tensors
themselves (shapes, datatypes, binary sizes) is checked where the arrays are made.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import BadRequest
from gateway.serving.service import Service
from gateway.tensors import InferRequest, RequestedOutput, json_part_size
from workers.wire import BadEnvelope, decode_json


class _Input(msgspec.Struct, frozen=True):
    name: str  # shape, datatype and data are skipped here: the worker reads them


class _Header(msgspec.Struct, frozen=True):
    inputs: list[_Input]
    id: str | msgspec.UnsetType = msgspec.UNSET
    parameters: dict[str, Any] = {}
    outputs: list[RequestedOutput] | msgspec.UnsetType = msgspec.UNSET


_decode = msgspec.json.Decoder(_Header).decode


def wanted(service: Service, model: str, label: str) -> bool:
    """Whether the version ``label`` picks now takes its V2 calls as NumPy arrays (raises
    ``NotFound`` as submitting would); nothing may await between this and the submit."""
    routes = service.table.model(model)
    return routes.config.versions[routes.pick(label).number].tensors == "numpy"


def json_size(raw: bytes, header_length: str | None) -> int:
    """About how many bytes of JSON ``header`` decodes (to decide where to decode them)."""
    if header_length is not None and header_length.isdigit():
        return min(int(header_length), len(raw))
    return len(raw)


def header(raw: bytes, header_length: str | None) -> tuple[InferRequest, int]:
    """The request's ``id`` and ``outputs`` (as an :class:`InferRequest` without inputs, for
    the answer) and the length of its JSON part."""
    size = json_part_size(len(raw), header_length)
    try:
        head = decode_json(_decode, memoryview(raw)[:size], "the V2 inference request")
    except BadEnvelope as exc:
        raise BadRequest(str(exc)) from None
    return InferRequest(inputs=[], id=head.id, parameters=head.parameters,
                        outputs=head.outputs), size
