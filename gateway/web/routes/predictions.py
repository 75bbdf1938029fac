"""Asynchronous predictions over HTTP (SPEC §3): ``POST`` queues one, ``GET .../{id}`` reads it.

The store and the runner are :mod:`gateway.serving.predictions`; here are the two routes, their
access rules (those of a model call) and their request log lines.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from gateway import logs
from gateway.errors import BadRequest, ModelgateError
from gateway.serving.predictions import AsyncRunner, PredictionStatus, database_path
from gateway.serving.service import Service
from gateway.web.http import error_response, off_loop, read_body, require_json
from gateway.web.keys import REQUEST_ID, RUNNER, SERVICE
from gateway.web.openapi import documented
from workers.wire import BadEnvelope, Envelope, decode_envelope

ROUTE = "/api/modelApis/async/v1/{model}"
_encode = msgspec.json.Encoder().encode


class Accepted(msgspec.Struct, frozen=True, rename="camel"):
    async_prediction_id: str


Handler = Callable[[web.Request], Awaitable[web.Response]]
ModelHandler = Callable[[web.Request, Service, str], Awaitable[web.Response]]
_JSON = "application/json"


def _caller(request: web.Request, service: Service, name: str) -> tuple[str | None, bool]:
    """(token name, restricted?) for a call on model ``name``; 401/403/404 as a model call."""
    routes, token = service.callable_model(name, request.headers.get("Authorization"))
    return token, not routes.public


@documented("Queue an asynchronous prediction on the production version", "async",
            request=Envelope, response=Accepted, status=202,
            errors=(400, 401, 403, 404, 413, 415, 503), auth=True)
async def submit(request: web.Request, service: Service, name: str) -> web.Response:
    token, _ = _caller(request, service, name)
    require_json(request)
    body = await read_body(request, service.deployment.gateway.max_body_bytes)
    try:  # stored now, run later: refuse a body that is not a call while the caller waits
        await off_loop(len(body), decode_envelope, body)
    except BadEnvelope as exc:
        raise BadRequest(str(exc)) from None
    pid = await request.app[RUNNER].submit(name, token, body)
    return web.Response(status=202, body=_encode(Accepted(pid)), content_type=_JSON,
                        headers={"Location": f"/api/modelApis/async/v1/{name}/{pid}"})


@documented("State and result of an asynchronous prediction", "async",
            response=PredictionStatus, errors=(401, 403, 404), auth=True)
async def status(request: web.Request, service: Service, name: str) -> web.Response:
    caller, restricted = _caller(request, service, name)
    state = await request.app[RUNNER].status(name, request.match_info["id"], caller, restricted)
    return web.Response(body=_encode(state), content_type=_JSON)


def install(app: web.Application) -> None:
    """Add the routes, and the runner's lifetime inside the service's (call after the pools'
    cleanup context is added: it starts once the pools are up and stops before they go)."""

    service = app[SERVICE]
    app[RUNNER] = AsyncRunner(service, database_path(service))

    async def runner(app: web.Application) -> AsyncIterator[None]:
        await app[RUNNER].start()
        yield
        await app[RUNNER].stop(service.deployment.gateway.drain_timeout_s)

    app.cleanup_ctx.append(runner)
    request_log = logs.request_logger() if service.deployment.gateway.access_log else None
    app.router.add_post(ROUTE, _route(submit, "async_submit", request_log))
    app.router.add_get(ROUTE + "/{id}", _route(status, "async_status", request_log))


def _route(handler: ModelHandler, call: str, request_log: Any) -> Handler:
    """``handler(request, service, model)`` as a route: its errors as our JSON errors, the
    request id on every answer, and the one line per request that model calls write too."""

    @functools.wraps(handler)  # keeps its __openapi__
    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        rid: str = request[REQUEST_ID]
        name = request.match_info["model"]
        try:
            response = await handler(request, request.app[SERVICE], name)
            response.headers["X-Request-Id"] = rid
        except ModelgateError as exc:
            response = error_response(exc, rid)
        if request_log is not None:
            request_log.info("request", request_id=rid, model=name, call=call,
                             status=response.status,
                             ms=round((time.perf_counter() - started) * 1000.0, 3))
        return response

    return handle
