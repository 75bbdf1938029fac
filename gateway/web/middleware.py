"""The app's one middleware: the connection's guard learns that a request's headers are in
(see :mod:`gateway.web.connections`), every request gets its id here, and aiohttp's own errors
and surprises become our JSON errors. One middleware rather than two: each layer costs a
coroutine and aiohttp's wrappers per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.errors import ModelgateError, NotFound
from gateway.web.connections import guard_of
from gateway.web.http import error_response, method_not_allowed, request_id
from gateway.web.keys import REQUEST_ID

log = structlog.get_logger("modelgate.gateway")


@web.middleware
async def errors_as_json(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """Tell the connection's guard the request's headers are in, and when the request is done;
    give the request its id, once (``request[REQUEST_ID]``), and answer aiohttp's own errors
    (no such route, wrong method) and surprises as our JSON errors."""
    guard = guard_of(request)
    if guard is not None:
        guard.request_started()
    rid = request[REQUEST_ID] = request_id(request.headers.get("X-Request-Id"))
    try:
        return await handler(request)
    except ModelgateError as exc:
        return error_response(exc, rid)
    except web.HTTPNotFound:
        return error_response(NotFound(f"no route {request.method} {request.path}; model "
                                       "calls are POST /models/{model}/latest/model"), rid)
    except web.HTTPMethodNotAllowed as exc:
        return error_response(method_not_allowed(request.method, exc.allowed_methods), rid)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled", path=request.path, request_id=rid)
        return error_response(ModelgateError("internal error; see the gateway log"), rid)
    finally:
        if guard is not None:
            guard.request_finished()
