"""The Open Inference Protocol (KServe V2, JSON over HTTP), so V2 clients such as ``tritonclient``
call the same functions as ``/models/...`` (SPEC §3).

Infer turns the V2 request into a model call (see :mod:`gateway.tensors`) that goes to the same
pool, behind the same access rules, counted and logged like ``{"data": {...}}`` would be.
Unlike model calls, the body is decoded here, because tensors must be reshaped. Without a
version, the production version answers (``labels/prod``).

Metadata lists the versions and the platform (``modelgate-python`` / ``modelgate-r``); inputs
and outputs are empty lists: the functions are dynamically typed, so only the script knows
them (MLServer does the same for models without declared metadata). Every error, even for an
unknown ``/v2`` route, is the V2 ``{"error": "..."}`` with the status of SPEC §4.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import web

from gateway import __version__, logs
from gateway.errors import CallFailed, ModelgateError, NotFound
from gateway.serving.routing import ModelRoutes, Served
from gateway.serving.service import Service
from gateway.tensors import InferRequest, InferResponse, call_body, outputs
from gateway.web import raw_tensors
from gateway.web.http import (
    error_response,
    method_not_allowed,
    off_loop,
    read_body,
    require_json,
)
from gateway.web.keys import REQUEST_ID, SERVICE
from gateway.web.openapi import documented, hidden

log = structlog.get_logger("modelgate.v2")


class TensorMetadata(msgspec.Struct, frozen=True):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(msgspec.Struct, frozen=True):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(msgspec.Struct, frozen=True):
    name: str
    version: str
    extensions: list[str]


class Live(msgspec.Struct, frozen=True):
    live: bool


class Ready(msgspec.Struct, frozen=True):
    ready: bool


class ModelReady(msgspec.Struct, frozen=True):
    name: str
    ready: bool


class V2Error(msgspec.Struct, frozen=True):
    """The V2 error body: only a message (the status says the rest)."""

    error: str


_encode = msgspec.json.Encoder().encode
SERVED_KEY = "modelgate.v2_served"  # infer notes on the request what the recorder needs
MODEL_MS_KEY = "modelgate.v2_model_ms"
Handler = Callable[[web.Request, str], Awaitable[web.Response]]
Recorder = Callable[[web.Request, str, int, float], None]
# ---------------------------------------------------------------------- handlers


def _v2(handler: Handler, recorder: Recorder | None = None
        ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Every error as the V2 ``{"error": ...}`` and the ``X-Request-Id`` header; ``recorder``
    counts and logs a call as model calls are (infer only)."""

    @functools.wraps(handler)
    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        rid: str = request[REQUEST_ID]
        response: web.Response | None = None  # None at the end: the client went away
        try:
            try:
                response = await handler(request, rid)
            except ModelgateError as exc:
                response = error_response(exc, rid, v2_error)
            except Exception:
                log.exception("unhandled", path=request.path, request_id=rid)
                response = error_response(ModelgateError("internal error; see the gateway log"),
                                          rid, v2_error)
        finally:
            if recorder is not None:
                recorder(request, rid, 499 if response is None else response.status,
                         time.perf_counter() - started)
        response.headers["X-Request-Id"] = rid
        return response

    return handle


def recorder(service: Service, request_log: Any) -> Recorder:
    """The metrics and the request log line of a V2 call, as model calls write them."""

    def record(request: web.Request, rid: str, status: int, seconds: float) -> None:
        served: Served | None = request.get(SERVED_KEY)
        if served is not None:
            served.pool.stats.record(status, seconds, request.get(MODEL_MS_KEY, -1.0))
        else:
            service.count_unrouted(request.match_info["model"], _label(request), status)
        if request_log is not None:
            request_log.info("request", request_id=rid, model=request.match_info["model"],
                             version=served and served.number, call="v2_infer", status=status,
                             ms=round(seconds * 1000.0, 3))

    return record


def v2_error(exc: ModelgateError, rid: str | None) -> V2Error:
    return V2Error(exc.message)


def _json(body: msgspec.Struct, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def _model(request: web.Request) -> ModelRoutes:
    """The model of the route, if the caller may see it (401/403/404 as a model call)."""
    routes, _ = request.app[SERVICE].callable_model(request.match_info["model"],
                                                    request.headers.get("Authorization"))
    return routes


def _label(request: web.Request) -> str:
    return request.match_info.get("version", "prod")


MODEL_ERRORS = (401, 403, 404)
INFER_ERRORS = (400, 401, 403, 404, 413, 415, 500, 502, 503, 504)


@documented("V2 server metadata", response=ServerMetadata, tag="v2", error_body=V2Error)
async def server_metadata(request: web.Request, rid: str) -> web.Response:
    return _json(ServerMetadata("modelgate", __version__, []))


@documented("V2 liveness", response=Live, tag="v2", error_body=V2Error)
async def live(request: web.Request, rid: str) -> web.Response:
    return _json(Live(True))


@documented("V2 readiness: every served version has a ready worker", response=Ready,
            also=(503,), tag="v2", error_body=V2Error)
async def ready(request: web.Request, rid: str) -> web.Response:
    ok = request.app[SERVICE].ready
    return _json(Ready(ok), 200 if ok else 503)


@documented("V2 model metadata", response=ModelMetadata, errors=MODEL_ERRORS, auth=True,
            tag="v2", error_body=V2Error)
async def model_metadata(request: web.Request, rid: str) -> web.Response:
    routes = _model(request)
    served = routes.pick(_label(request))
    language = routes.config.versions[served.number].language
    return _json(ModelMetadata(name=routes.name, versions=[str(n) for n in sorted(routes.versions)],
                               platform=f"modelgate-{language}", inputs=[], outputs=[]))


@documented("V2 model readiness", response=ModelReady, errors=MODEL_ERRORS, also=(503,),
            auth=True, tag="v2", error_body=V2Error)
async def model_ready(request: web.Request, rid: str) -> web.Response:
    routes = _model(request)
    ok = routes.pick(_label(request)).pool.ready
    return _json(ModelReady(routes.name, ok), 200 if ok else 503)


@documented("V2 inference: input tensors become named arguments", request=InferRequest,
            response=InferResponse, errors=INFER_ERRORS, auth=True, tag="v2", error_body=V2Error)
async def infer(request: web.Request, rid: str) -> web.Response:
    service = request.app[SERVICE]
    name = request.match_info["model"]
    _model(request)
    # tritonclient sends no Content-Type (binary bodies: a custom header, which browsers send
    # cross-site only after a CORS preflight); any other type must be JSON
    if ("Content-Type" in request.headers
            and "Inference-Header-Content-Length" not in request.headers):
        require_json(request)
    raw = await read_body(request, service.deployment.gateway.max_body_bytes)
    header_length = request.headers.get("Inference-Header-Content-Length")
    submitted = None
    if raw_tensors.wanted(service, name, _label(request)):  # `tensors: numpy`: as it came
        infer_request, json_length = await off_loop(
            raw_tensors.json_size(raw, header_length), raw_tensors.header, raw, header_length)
        if raw_tensors.wanted(service, name, _label(request)):  # still (no reload meanwhile)
            submitted = service.submit(name, _label(request), raw, request[REQUEST_ID],
                                       v2_json=json_length)
    if submitted is not None:
        served, replied = submitted
    else:
        infer_request, body = await off_loop(len(raw), call_body, raw, header_length)
        served, replied = service.submit(name, _label(request), body, request[REQUEST_ID])
    request[SERVED_KEY] = served
    reply = await replied
    request[MODEL_MS_KEY] = reply.model_ms
    if reply.error is not None:
        raise CallFailed(reply.error.status, reply.error.type, reply.error.message)
    rid_out = rid if infer_request.id is msgspec.UNSET else infer_request.id
    answer = await off_loop(len(reply.result), _answer, name, served.number, rid_out,
                            reply.result, infer_request)
    return web.Response(body=answer, content_type="application/json")


def _answer(name: str, number: int, rid: str, result: bytes, asked: InferRequest) -> bytes:
    return _encode(InferResponse(name, str(number), rid, outputs(result, asked.outputs)))


def install(app: web.Application) -> None:
    service = app[SERVICE]
    record = recorder(service, logs.request_logger()
                      if service.deployment.gateway.access_log else None)
    routes = [
        ("GET", "/v2", _v2(server_metadata)),
        ("GET", "/v2/health/live", _v2(live)),
        ("GET", "/v2/health/ready", _v2(ready)),
        ("GET", "/v2/models/{model}", _v2(model_metadata)),
        ("GET", r"/v2/models/{model}/versions/{version:\d+}", _v2(model_metadata)),
        ("GET", "/v2/models/{model}/ready", _v2(model_ready)),
        ("GET", r"/v2/models/{model}/versions/{version:\d+}/ready", _v2(model_ready)),
        ("POST", "/v2/models/{model}/infer", _v2(infer, record)),
        ("POST", r"/v2/models/{model}/versions/{version:\d+}/infer", _v2(infer, record)),
    ]
    resources = [(app.router.add_get if method == "GET" else app.router.add_post)(
        path, handler).resource for method, path, handler in routes]  # GET: HEAD as well

    @hidden("answers what no /v2 route matched, in the V2 error form")
    async def unrouted(request: web.Request, rid: str) -> web.Response:
        allowed: set[str] = set()
        for resource in resources:
            if resource is not None:
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise method_not_allowed(request.method, allowed)
        raise NotFound(f"no route {request.method} {request.path}")

    app.router.add_route("*", "/v2/{tail:.*}", _v2(unrouted))
