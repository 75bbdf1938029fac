"""Model calls: ``POST /models/{model}/latest/model``, ``.../labels/prod/model`` and
``.../{n}/model`` (SPEC §3).

A call reads as a straight line: resolve the model, check the token, pick the version, hand the
raw body to the dispatcher, and wrap the worker's JSON result in the response envelope. The body
is never decoded here: the worker does that, so the gateway's cost per call does not grow with
the payload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from gateway import logs
from gateway.api import CallResponse
from gateway.errors import CallFailed, ModelgateError
from gateway.serving.stats import VersionStats
from gateway.web.fast import FAST_CALLS
from gateway.web.http import JSON_HEADERS, error_response, read_body, require_json
from gateway.web.keys import REQUEST_ID, SERVICE
from gateway.web.openapi import documented
from workers.wire import Envelope

CALL_ERRORS = (400, 401, 403, 404, 413, 415, 500, 502, 503, 504)
_CALLS = {"latest": "Call the latest version", "prod": "Call the production version",
          None: "Call version {version}"}
_encode = msgspec.json.Encoder().encode


def model_call(label: str | None, request_log: Any
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler for one route shape: ``latest``, ``prod`` or a number (``label=None``);
    ``request_log`` writes the one line per request (None: no request lines)."""

    @documented(_CALLS[label], "models", request=Envelope, response=CallResponse,
                errors=CALL_ERRORS, auth=True)
    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        service = request.app[SERVICE]
        rid: str = request[REQUEST_ID]
        name = request.match_info["model"]
        version: int | None = None
        status = 500
        stats: VersionStats | None = None
        model_ms = -1.0
        try:
            service.callable_model(name, request.headers.get("Authorization"))
            require_json(request)
            body = await read_body(request, service.deployment.gateway.max_body_bytes)
            served, replied = service.submit(name, label or request.match_info["version"], body,
                                             rid)
            version = served.number
            stats = served.pool.stats
            reply = await replied
            model_ms = reply.model_ms
            if reply.error is not None:
                raise CallFailed(reply.error.status, reply.error.type, reply.error.message)
            timing = (time.perf_counter() - started) * 1000.0
            status = 200
            return web.Response(body=b'{"result":%b,"release":%b,"request_id":%b,'
                                     b'"model_time_in_ms":%.3f,"timing":%.3f}' % (
                                         reply.result, served.release, _encode(rid),
                                         reply.model_ms, timing),
                                headers={**JSON_HEADERS, "X-Request-Id": rid})
        except ModelgateError as exc:
            status = exc.status
            return error_response(exc, rid)
        except asyncio.CancelledError:
            status = 499  # the client went away; its call still finishes in the worker
            raise
        finally:
            elapsed = time.perf_counter() - started  # once, for the metrics and the log line
            if stats is not None:
                stats.record(status, elapsed, model_ms)
            else:
                service.count_unrouted(name, label or request.match_info["version"], status)
            if request_log is not None:
                request_log.info("request", request_id=rid, model=name, version=version,
                                 status=status, ms=round(elapsed * 1000.0, 3))

    return handle


def install(app: web.Application) -> None:
    request_log = logs.request_logger() if app[SERVICE].deployment.gateway.access_log else None
    add = app.router.add_route
    # the routes, for gateway.web.fast.FastRunner: model calls straight to their handler
    app[FAST_CALLS] = {
        "latest": add("POST", "/models/{model}/latest/model", model_call("latest", request_log)),
        "prod": add("POST", "/models/{model}/labels/prod/model", model_call("prod", request_log)),
        "number": add("POST", r"/models/{model}/{version:\d+}/model",
                      model_call(None, request_log))}
