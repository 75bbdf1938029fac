"""What every route does with a request: its id, its body, and its errors as JSON.

There is one error-to-JSON path, :func:`error_response`: for the routes' own answers, the
middleware's (aiohttp's errors, surprises) and the V2 routes' (in their own body shape).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gateway.api import ErrorBody, ErrorDetail
from gateway.errors import (
    BadRequest,
    MethodNotAllowed,
    ModelgateError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from gateway.web.connections import body_timeout

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_REQUEST_ID = 128
T = TypeVar("T")
OFF_LOOP_BYTES = 64 * 1024  # bodies (and results) above this are parsed in a thread
_RID_PREFIX = os.urandom(4).hex()
_rid_counter = itertools.count(1)
_encode = msgspec.json.Encoder().encode
ErrorShape = Callable[[ModelgateError, str | None], msgspec.Struct]


def request_id(sent: str | None) -> str:
    """Keep a client's ``X-Request-Id`` when it is sane; otherwise make one."""
    if sent and len(sent) <= MAX_REQUEST_ID and sent.isprintable():
        return sent
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"


def error_body(exc: ModelgateError, rid: str | None) -> ErrorBody:
    """``{"error": {"type", "message", "request_id"}}``: the gateway's errors (SPEC §4)."""
    return ErrorBody(ErrorDetail(exc.type, exc.message, rid))


def error_response(exc: ModelgateError, rid: str | None,
                   shape: ErrorShape = error_body) -> web.Response:
    """``exc`` as a JSON response: its status, its headers, and its body in ``shape``."""
    headers = {**JSON_HEADERS, **exc.headers}
    if rid is not None:
        headers["X-Request-Id"] = rid
    response = web.Response(body=_encode(shape(exc, rid)), status=exc.status, headers=headers)
    if exc.status == 408:  # the rest of a slow body is not worth waiting for
        response.force_close()
    return response


def method_not_allowed(method: str, allowed: Iterable[str]) -> MethodNotAllowed:
    """405, saying what is allowed (in the ``Allow`` header too, as RFC 9110 wants)."""
    listed = ", ".join(sorted(allowed))
    error = MethodNotAllowed(f"{method} is not allowed here; use {listed}")
    error.headers = {"Allow": listed}
    return error


def require_json(request: web.Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``application/*+json``):
    a cross-site HTML form can send only form and text types, so it cannot call a model or the
    admin API with a browser's credentials."""
    media = request.content_type
    if media == "application/json" or (media.startswith("application/")
                                       and media.endswith("+json")):
        return
    sent = request.headers.get("Content-Type")
    raise UnsupportedMediaType(f"the body must be JSON: send Content-Type: application/json "
                               f"(got {sent[:100]!r})" if sent else
                               "the body must be JSON: send Content-Type: application/json")


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body has {request.content_length} bytes; "
                              f"the limit is {limit}")
    timeout_s = None
    try:
        if request.content.is_eof():  # all of it came with the headers: no wait to bound
            body = await request.read()
        else:  # (arming a timer for every call cost ~10% of the event loop at c=64)
            timeout_s = body_timeout(request)
            async with asyncio.timeout(timeout_s):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes") from None
    except TimeoutError:
        raise RequestTimeout(f"the body took more than {timeout_s:g} s to arrive "
                             "(gateway.body_timeout_s)") from None
    if not body:
        raise BadRequest('the body is empty; send JSON such as {"data": {...}} '
                         'or {"parameters": [...]}')
    return body


async def off_loop(size: int, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` on a body of ``size`` bytes: at once when it is small, in a thread when
    it is large, so that parsing or reshaping megabytes does not stall every other request of
    the gateway (a thread hop costs more than parsing a small body)."""
    if size <= OFF_LOOP_BYTES:
        return work(*args)
    return await asyncio.to_thread(work, *args)
