"""What handlers reach through the app and the request: typed keys, never module globals.

The request id is set once per request, by :func:`gateway.web.middleware.errors_as_json`, and
read by every handler as ``request[REQUEST_ID]`` (a plain string key: aiohttp's typed
``RequestKey`` is newer than the oldest aiohttp this package supports).
"""

from __future__ import annotations

from aiohttp import web

from gateway.serving.predictions import AsyncRunner
from gateway.serving.reload import Reloader
from gateway.serving.service import Service

SERVICE = web.AppKey("service", Service)
RELOADER = web.AppKey("reloader", Reloader)
RUNNER = web.AppKey("async_runner", AsyncRunner)
REQUEST_ID = "modelgate.request_id"
