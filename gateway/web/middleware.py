"""The app's middleware: aiohttp's own errors and surprises become our JSON errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.errors import MethodNotAllowed, ModelgateError, NotFound
from gateway.web.http import error_response, request_id

log = structlog.get_logger("modelgate.gateway")


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
