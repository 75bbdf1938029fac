"""What handlers reach through the app: typed keys, never module globals."""

from __future__ import annotations

from aiohttp import web

from gateway.serving.predictions import AsyncRunner
from gateway.serving.reload import Reloader
from gateway.serving.service import Service

SERVICE = web.AppKey("service", Service)
RELOADER = web.AppKey("reloader", Reloader)
RUNNER = web.AppKey("async_runner", AsyncRunner)
