"""The OpenAPI 3 document at ``GET /openapi.json``, generated from the app's own routes.

Each handler carries its :class:`Operation` (set with :func:`documented`): the msgspec Structs
it reads and writes and the error statuses it may answer. The document is built from the router
and those Structs, so the API is described once, where it is implemented. A route whose handler
has no Operation is listed by :func:`undocumented_routes` (a test keeps that list empty); routes
that are not part of the API (the ``/v2`` catch-all) say so with :func:`hidden`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gateway import __version__
from gateway.api import ErrorBody

H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """What one route reads and writes, for the document."""

    summary: str
    tag: str
    request: Any = None  # a msgspec Struct type (or any type msgspec can describe), or None
    response: Any = None  # the 2xx body's type; None: no JSON body
    status: int = 200  # the success status
    errors: tuple[int, ...] = ()  # statuses of ErrorBody answers it may give
    content_type: str = "application/json"  # of the success body
    auth: bool = False  # may need a token (Bearer or Basic)
    also: tuple[int, ...] = ()  # other statuses answered with the success body (readyz: 503)
    error_body: Any = None  # the type of error bodies; None: gateway.api.ErrorBody


@dataclass(frozen=True)
class Hidden:
    """A route that is deliberately not in the document, and why."""

    reason: str


def documented(summary: str, tag: str, **fields: Any) -> Callable[[H], H]:
    """Attach an :class:`Operation` to a handler (see the module docstring)."""

    def mark(handler: H) -> H:
        handler.__openapi__ = Operation(summary, tag, **fields)  # type: ignore[attr-defined]
        return handler

    return mark


def hidden(reason: str) -> Callable[[H], H]:
    """Keep a handler's routes out of the document, saying why."""

    def mark(handler: H) -> H:
        handler.__openapi__ = Hidden(reason)  # type: ignore[attr-defined]
        return handler

    return mark


# ---------------------------------------------------------------------- routes


@dataclass(frozen=True)
class DocumentedRoute:
    method: str
    path: str  # OpenAPI form: {name}, no regex
    parameters: dict[str, str]  # path parameter -> its regex
    operation: Operation


_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")
_SEGMENT = "[^{}/]+"  # aiohttp's default for {name}


def _routes(app: web.Application) -> Iterator[tuple[str, str, dict[str, str], Any]]:
    """(method, path, parameters, what the handler says about itself) of every route, without
    the HEAD routes aiohttp adds beside each GET."""
    for resource in app.router.resources():
        routes = list(resource)
        gets = {route.handler for route in routes if route.method == "GET"}
        info = resource.get_info()
        if isinstance(resource, web.StaticResource):
            path, parameters = f"{info['prefix']}/{{filename}}", {"filename": ".+"}
        elif "formatter" in info:
            path = info["formatter"]
            parameters = dict(_GROUP.findall(info["pattern"].pattern))
        else:
            path, parameters = info.get("path", resource.canonical), {}
        for route in routes:
            if route.method == "HEAD" and route.handler in gets:
                continue
            if isinstance(resource, web.StaticResource):  # add_static: nothing to decorate
                mark: Any = Operation("Static files", "ui", content_type="*/*", errors=(404,))
            else:
                mark = getattr(route.handler, "__openapi__", None)
            yield route.method, path, parameters, mark


def documented_routes(app: web.Application) -> list[DocumentedRoute]:
    return [DocumentedRoute(method, path, parameters, mark)
            for method, path, parameters, mark in _routes(app) if isinstance(mark, Operation)]


def undocumented_routes(app: web.Application) -> list[str]:
    """``METHOD /path`` of every route that is neither documented nor hidden."""
    return [f"{method} {path}" for method, path, _, mark in _routes(app)
            if not isinstance(mark, (Operation, Hidden))]


# ---------------------------------------------------------------------- the document


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s documented routes."""
    routes = documented_routes(app)
    types: list[Any] = [ErrorBody]
    for route in routes:
        op = route.operation
        types += [t for t in (op.request, op.response, op.error_body) if t is not None]
    types = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip(types, schemas))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, schema_of, ErrorBody)
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelgate", "version": __version__,
                 "description": "Python and R functions as versioned REST endpoints."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "basic": {"type": "http", "scheme": "basic"}},
        },
    }


def _operation(route: DocumentedRoute, schema_of: dict[Any, Any], error_type: Any
               ) -> dict[str, Any]:
    op = route.operation
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {op.content_type: {"schema": schema_of[op.response]}}
    elif op.content_type != "application/json":
        success["content"] = {op.content_type: {"schema": {"type": "string"}}}
    responses = {str(status): success for status in (op.status, *op.also)}
    error = {"schema": schema_of[op.error_body or error_type]}
    for status in op.errors:
        responses.setdefault(str(status), {
            "description": HTTPStatus(status).phrase, "content": {"application/json": error},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {})})
    slug = re.sub(r"[^a-z0-9]+", "_", route.path.lower()).strip("_")
    document: dict[str, Any] = {
        "summary": op.summary, "tags": [op.tag],
        "operationId": f"{route.method.lower()}_{slug or 'root'}",
        "responses": responses,
    }
    if route.parameters:
        document["parameters"] = [_parameter(name, regex)
                                  for name, regex in route.parameters.items()]
    if op.request is not None:
        document["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schema_of[op.request]}}}
    if op.auth:
        document["security"] = [{"bearer": []}, {"basic": []}, {}]  # {}: public models
    return document


def _parameter(name: str, regex: str) -> dict[str, Any]:
    if regex == r"\d+":
        schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    elif regex == _SEGMENT:
        schema = {"type": "string", "pattern": "^[^{}/]+$"}
    else:
        schema = {"type": "string", "pattern": f"^(?:{regex})$"}
    return {"name": name, "in": "path", "required": True, "schema": schema,
            **({"description": _PARAMETERS[name]} if name in _PARAMETERS else {})}


_PARAMETERS = {"model": "the model's name in the deployment config",
               "version": "a version number of the model"}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    503: {"Retry-After": {"schema": {"type": "integer"}}},
}


def install(app: web.Application) -> None:
    """Serve the document; add this route last, so the document sees every route. It is built
    on the first request and kept (routes do not change while the app runs)."""
    built: list[bytes] = []

    @documented("This OpenAPI document", "operations", response=dict[str, Any])
    async def openapi_json(request: web.Request) -> web.Response:
        if not built:
            built.append(msgspec.json.encode(build(request.app)))
        return web.Response(body=built[0], content_type="application/json")

    app.router.add_get("/openapi.json", openapi_json)
