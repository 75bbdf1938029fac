"""The HTTP application: routes, the one error-to-JSON path, and the per-request log line.

A model call reads as a straight line: resolve the model, check the token, pick the version,
hand the raw body to the dispatcher, and wrap the worker's JSON result in the response
envelope. The body is never decoded here: the worker does that, so the gateway's cost per call
does not grow with the payload.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import web

from gateway import logs, metrics
from gateway.config import Deployment
from gateway.errors import (
    BadRequest,
    CallFailed,
    MethodNotAllowed,
    ModelgateError,
    NotFound,
    PayloadTooLarge,
)
from gateway.openapi import documented
from gateway.routing import Release
from gateway.service import Progress, Service
from workers.wire import Envelope

SERVICE = web.AppKey("service", Service)
log = structlog.get_logger("modelgate.gateway")

_JSON_HEADERS = {"Content-Type": "application/json"}
_RID_PREFIX = os.urandom(4).hex()
_rid_counter = itertools.count(1)
MAX_REQUEST_ID = 128


class ErrorDetail(msgspec.Struct, frozen=True):
    type: str
    message: str
    request_id: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error the gateway returns: ``{"error": {"type", "message", "request_id"}}``."""

    error: ErrorDetail


class CallResponse(msgspec.Struct, frozen=True):
    """The answer to a model call (model_call writes its bytes around the worker's result)."""

    result: Any
    release: Release
    request_id: str
    model_time_in_ms: float
    timing: float


CALL_ERRORS = (400, 401, 403, 404, 413, 500, 502, 503, 504)
_CALLS = {"latest": "Call the latest version", "prod": "Call the production version",
          None: "Call version {version}"}
_encode = msgspec.json.Encoder().encode


def request_id(sent: str | None) -> str:
    """Keep a client's ``X-Request-Id`` when it is sane; otherwise make one."""
    if sent and len(sent) <= MAX_REQUEST_ID and sent.isprintable():
        return sent
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"


def error_response(exc: ModelgateError, rid: str | None) -> web.Response:
    headers = {**_JSON_HEADERS, **exc.headers}
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


def model_call(label: str | None, request_log: Any
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler for one route shape: ``latest``, ``prod`` or a number (``label=None``);
    ``request_log`` writes the one line per request (None: no request lines)."""

    @documented(_CALLS[label], "models", request=Envelope, response=CallResponse,
                errors=CALL_ERRORS, auth=True)
    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        service = request.app[SERVICE]
        rid = request_id(request.headers.get("X-Request-Id"))
        name = request.match_info["model"]
        version: int | None = None
        status = 500
        stats: metrics.VersionStats | None = None
        model_ms = -1.0
        try:
            service.callable_model(name, request.headers.get("Authorization"))
            body = await read_body(request, service.deployment.gateway.max_body_bytes)
            # Pick the version only now, with no await before submit: a reload that swapped
            # the table meanwhile is seen, and a retired pool never gets a new call.
            served = service.table.model(name).pick(label or request.match_info["version"])
            version = served.number
            stats = served.pool.stats
            reply = await service.dispatcher.submit(served.pool, body)  # type: ignore[union-attr]
            model_ms = reply.model_ms
            if reply.error is not None:
                raise CallFailed(reply.error.status, reply.error.type, reply.error.message)
            timing = (time.perf_counter() - started) * 1000.0
            status = 200
            return web.Response(body=b'{"result":%b,"release":%b,"request_id":%b,'
                                     b'"model_time_in_ms":%.3f,"timing":%.3f}' % (
                                         reply.result, served.release, _encode(rid),
                                         reply.model_ms, timing),
                                headers={**_JSON_HEADERS, "X-Request-Id": rid})
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
                metrics.record_unrouted(request, service, label or request.match_info["version"],
                                        status)
            if request_log is not None:
                request_log.info("request", request_id=rid, model=name, version=version,
                                 status=status, ms=round(elapsed * 1000.0, 3))

    return handle


@web.middleware
async def errors_as_json(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """aiohttp's own errors (no such route, wrong method) and surprises, as our JSON errors."""
    try:
        return await handler(request)
    except ModelgateError as exc:
        return error_response(exc, request_id(request.headers.get("X-Request-Id")))
    except web.HTTPNotFound:
        return error_response(NotFound(f"no route {request.method} {request.path}; model "
                                       "calls are POST /models/{model}/latest/model"),
                              request_id(request.headers.get("X-Request-Id")))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}")
        error.headers = {"Allow": allowed}  # a 405 must say what is allowed (RFC 9110)
        return error_response(error, request_id(request.headers.get("X-Request-Id")))
    except web.HTTPException:
        raise
    except Exception:
        rid = request_id(request.headers.get("X-Request-Id"))
        log.exception("unhandled", path=request.path, request_id=rid)
        return error_response(ModelgateError("internal error; see the gateway log"), rid)


@documented("Liveness", "operations", response=dict[str, str])
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"}, dumps=lambda o: _encode(o).decode())


@documented("Readiness: every served version has a ready worker (503 and why not otherwise)",
            "operations", response=dict[str, Any], also=(503,))
async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    ready = service.ready
    return web.Response(body=_encode({"ready": ready, "versions": service.readiness()}),
                        status=200 if ready else 503, headers=_JSON_HEADERS)


def create_app(deployment: Deployment, progress: Progress | None = None,
               json_logs: bool = True) -> web.Application:
    """The whole gateway as an aiohttp app; its pools live as long as the app runs."""
    # Headers up to 64 KiB reach the handlers (which bound what they keep, e.g. request ids)
    # and get our JSON errors; past that, aiohttp's own plain 400 answers.
    app = web.Application(client_max_size=deployment.gateway.max_body_bytes,
                          middlewares=[errors_as_json],
                          handler_args={"max_field_size": 65536, "max_line_size": 65536})
    app[SERVICE] = Service(deployment, progress, json_logs)

    async def pools(app: web.Application) -> AsyncIterator[None]:
        await app[SERVICE].start()
        flusher = asyncio.create_task(_flush_logs())
        yield
        flusher.cancel()
        await app[SERVICE].stop()
        logs.drain()

    app.cleanup_ctx.append(pools)
    from gateway import async_predictions, webui  # they import SERVICE and helpers from here

    async_predictions.install(app)  # after `pools`: starts once they are up, stops before
    webui.install(app)
    from gateway import admin  # /admin/reload and /admin/audit; SIGHUP uses its Reloader

    admin.install(app)
    request_log = logs.request_logger() if deployment.gateway.access_log else None
    add = app.router.add_route
    add("POST", "/models/{model}/latest/model", model_call("latest", request_log))
    add("POST", "/models/{model}/labels/prod/model", model_call("prod", request_log))
    add("POST", r"/models/{model}/{version:\d+}/model", model_call(None, request_log))
    app.router.add_get("/healthz", healthz)  # and HEAD, for load balancers that probe so
    app.router.add_get("/readyz", readyz)
    metrics.install(app)
    from gateway import catalogue  # after the calls: GET /models/{m} is never tried for them

    catalogue.install(app)
    from gateway import openapi, v2  # the Open Inference Protocol; v2 imports from here

    v2.install(app)
    openapi.install(app)  # last: the document describes every route added before it
    return app


async def _flush_logs() -> None:
    while True:
        await asyncio.sleep(0.2)
        logs.drain()
