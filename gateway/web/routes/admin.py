"""The admin API (SPEC §6): ``POST /admin/reload`` and ``GET /admin/audit``.

It answers admin tokens only (``admin: true`` in the config): 401 without a known token, 403 for
a token that is not an admin. A reload is :class:`gateway.serving.reload.Reloader`'s, the same
that SIGHUP runs.
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from gateway import audit
from gateway.api import ReloadReport, ReloadRequest
from gateway.errors import BadRequest
from gateway.web.http import require_json
from gateway.web.keys import RELOADER, SERVICE
from gateway.web.openapi import documented

AUDIT_LIMIT_DEFAULT = 100
AUDIT_LIMIT_MAX = 1000


class AuditPage(msgspec.Struct, frozen=True):
    lines: list[audit.AuditLine]


_encode = msgspec.json.Encoder().encode
_JSON = {"Content-Type": "application/json"}


def _admin(request: web.Request) -> str:
    """The caller's admin token name; 401 or 403 otherwise."""
    tokens = request.app[SERVICE].tokens
    return tokens.authorize(request.headers.get("Authorization"), tokens.admins,
                            "the admin API")


@documented("Reload the deployment file", "admin", request=ReloadRequest,
            response=ReloadReport, errors=(400, 401, 403, 415, 500), auth=True)
async def reload_handler(request: web.Request) -> web.Response:
    actor = _admin(request)
    require_json(request)
    report = await request.app[RELOADER].reload(actor)
    return web.Response(body=_encode(report), headers=_JSON)


@documented("Recent audit log lines; query: model, action, limit (1-1000)", "admin",
            response=AuditPage, errors=(400, 401, 403), auth=True)
async def audit_handler(request: web.Request) -> web.Response:
    _admin(request)
    query = request.query
    limit = _limit(query.get("limit"))
    service = request.app[SERVICE]
    lines = await asyncio.to_thread(audit.recent, audit.audit_path(service.deployment), limit,
                                    query.get("model"), query.get("action"))
    return web.Response(body=_encode(AuditPage(lines)),
                        headers={**_JSON, "Cache-Control": "no-store"})


def _limit(given: str | None) -> int:
    if given is None:
        return AUDIT_LIMIT_DEFAULT
    try:  # not str.isdigit: "²" is a digit that int() refuses
        limit = int(given)
    except ValueError:
        limit = 0
    if not 1 <= limit <= AUDIT_LIMIT_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {AUDIT_LIMIT_MAX}")
    return limit


def install(app: web.Application) -> None:
    app.router.add_post("/admin/reload", reload_handler)
    app.router.add_get("/admin/audit", audit_handler)
