"""Model calls straight from aiohttp's low-level server to their handler.

aiohttp's ``Application`` resolves every request by trying its routes in order, then runs the
middleware through two wrapper coroutines (ours and aiohttp's ``_fix_request_current_app``).
:class:`FastRunner` is the app's runner (a :class:`~gateway.web.connections.GuardedRunner`, so
connections keep their limits) whose low-level ``web.Server`` first looks at the request
line: a plain ``POST /models/{model}/latest/model`` (or ``labels/prod``, or ``{n}``) gets its
route's match info from one regular expression and goes to ``errors_as_json`` and the route's
handler directly, so it is answered exactly as through the app. Anything else (other routes,
percent-encoded paths, ``Expect:`` headers, other methods) goes through the app as before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web, web_urldispatcher

from gateway.web.connections import GuardedRunner
from gateway.web.middleware import errors_as_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST_CALLS: web.AppKey[dict[str, web.AbstractRoute]] = web.AppKey("modelgate.fast_calls",
                                                                  dict)
# aiohttp's {model} is [^{}/]+; without "%" the raw path is the path the router would match
_CALL = re.compile(r"/models/([^{}/%]+)/(?:(latest)/model|labels/(prod)/model|(\d+)/model)")


class FastRunner(GuardedRunner):
    """The guarded runner whose server answers model calls without the router (see above)."""

    async def _make_server(self) -> Any:
        guarded = await super()._make_server()
        server = guarded._server
        app = self.app
        routes = app.get(FAST_CALLS)
        if not routes or list(app.middlewares) != [errors_as_json]:
            return guarded  # not the app this was written for: leave it as it is
        through_app: Handler = server.request_handler  # type: ignore[assignment]

        async def handle(request: web.Request) -> web.StreamResponse:
            found = _CALL.fullmatch(request.rel_url.raw_path) if request.method == "POST" \
                else None
            if found is None or "Expect" in request.headers:
                return await through_app(request)
            name, latest, prod, number = found.groups()
            if number is None:
                route = routes[latest or prod]
                match = web_urldispatcher.UrlMappingMatchInfo({"model": name}, route)
            else:
                route = routes["number"]
                match = web_urldispatcher.UrlMappingMatchInfo({"model": name,
                                                                "version": number}, route)
            match.add_app(app)
            match.freeze()
            request._match_info = match
            return await errors_as_json(request, route.handler)

        server.request_handler = handle
        return guarded
