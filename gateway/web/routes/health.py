"""Liveness and readiness for load balancers and orchestrators: ``/healthz``, ``/readyz``."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from gateway.web.http import JSON_HEADERS
from gateway.web.keys import SERVICE
from gateway.web.openapi import documented

_encode = msgspec.json.Encoder().encode


@documented("Liveness", "operations", response=dict[str, str])
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"}, dumps=lambda o: _encode(o).decode())


@documented("Readiness: every served version has a ready worker (503 otherwise); public "
            "models' versions, and with an admin token every version and why it cannot serve",
            "operations", response=dict[str, Any], also=(503,))
async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    ready = service.ready
    detailed = service.is_admin(request.headers.get("Authorization"))
    return web.Response(body=_encode({"ready": ready, "versions": service.readiness(detailed)}),
                        status=200 if ready else 503,
                        headers={**JSON_HEADERS, "Cache-Control": "no-store",
                                 "Vary": "Authorization"})


def install(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)  # and HEAD, for load balancers that probe so
    app.router.add_get("/readyz", readyz)
