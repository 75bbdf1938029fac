"""The whole gateway as one aiohttp app: the service's lifetime, the middleware, the routes.

:func:`create_app` is the only importer of :mod:`gateway.web.routes`. Routes are added in the
order of :data:`ROUTES`, which is the order aiohttp tries them in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import logs
from gateway.config import Deployment
from gateway.serving.reload import Reloader
from gateway.serving.service import Progress, Service
from gateway.web import openapi
from gateway.web.keys import RELOADER, SERVICE
from gateway.web.middleware import errors_as_json
from gateway.web.routes import admin, calls, catalogue, health, metrics, predictions, v2, webui

ROUTES: tuple[Callable[[web.Application], None], ...] = (
    predictions.install,  # its runner's lifetime nests in the service's: up after, down before
    webui.install,
    admin.install,
    calls.install,
    health.install,
    metrics.install,
    catalogue.install,  # after the calls: GET /models/{m} is never tried for them
    v2.install,
    openapi.install,  # last: the document describes every route added before it
)


def create_app(deployment: Deployment, progress: Progress | None = None,
               json_logs: bool = True, worker_user: str | None = None) -> web.Application:
    """The whole gateway as an aiohttp app; its pools live as long as the app runs
    (``worker_user``: instead of ``gateway.worker_user``)."""
    # Headers up to 64 KiB reach the handlers (which bound what they keep, e.g. request ids)
    # and get our JSON errors; past that, aiohttp's own plain 400 answers.
    app = web.Application(client_max_size=deployment.gateway.max_body_bytes,
                          middlewares=[errors_as_json],
                          handler_args={"max_field_size": 65536, "max_line_size": 65536})
    service = Service(deployment, progress, json_logs, worker_user)
    app[SERVICE] = service
    app[RELOADER] = Reloader(service)  # /admin/reload and SIGHUP (gateway.cli.serve)

    async def pools(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        flusher = asyncio.create_task(_flush_logs())
        yield
        flusher.cancel()
        await service.stop()
        logs.drain()

    app.cleanup_ctx.append(pools)
    for install in ROUTES:
        install(app)
    return app


async def _flush_logs() -> None:
    while True:
        await asyncio.sleep(0.2)
        logs.drain()
