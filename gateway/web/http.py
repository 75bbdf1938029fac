"""What every route does with a request: its id, its body, and its errors as JSON.

There is one error-to-JSON path, :func:`error_response`: the routes' own answers, the
middleware's (aiohttp's errors, surprises) and those of the V2 routes in their own body shape.
"""

from __future__ import annotations

import itertools
import os

import msgspec
from aiohttp import web

from gateway.api import ErrorBody, ErrorDetail
from gateway.errors import BadRequest, ModelgateError, PayloadTooLarge

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_REQUEST_ID = 128
_RID_PREFIX = os.urandom(4).hex()
_rid_counter = itertools.count(1)
_encode = msgspec.json.Encoder().encode


def request_id(sent: str | None) -> str:
    """Keep a client's ``X-Request-Id`` when it is sane; otherwise make one."""
    if sent and len(sent) <= MAX_REQUEST_ID and sent.isprintable():
        return sent
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"


def error_response(exc: ModelgateError, rid: str | None) -> web.Response:
    headers = {**JSON_HEADERS, **exc.headers}
    if rid is not None:
        headers["X-Request-Id"] = rid
    body = _encode(ErrorBody(ErrorDetail(exc.type, exc.message, rid)))
    return web.Response(body=body, status=exc.status, headers=headers)


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body has {request.content_length} bytes; "
                              f"the limit is {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes") from None
    if not body:
        raise BadRequest('the body is empty; send JSON such as {"data": {...}} '
                         'or {"parameters": [...]}')
    return body


