"""The admin API (SPEC §6): ``POST /admin/reload``, ``GET /admin/audit``, and publishing:
``POST /admin/models/{model}/versions`` (a tar.gz project), ``.../promote``, ``.../rollback``,
``.../versions/{n}/unpublish`` and ``GET .../versions`` (see
:mod:`gateway.serving.publishing`).

It answers admin tokens only (``admin: true`` in the config): 401 without a known token, 403 for
a token that is not an admin. A reload is :class:`gateway.serving.reload.Reloader`'s, the same
that SIGHUP runs.
"""

from __future__ import annotations

import asyncio
import tempfile

import msgspec
from aiohttp import web

from gateway import audit, edits
from gateway.api import ActionResult, ReloadReport, ReloadRequest, VersionList
from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.serving import publishing
from gateway.serving.stats import BOUNDS_S
from gateway.serving.worker_logs import LogLine
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


class Promotion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int


GZIP_TYPES = ("application/gzip", "application/x-gzip")
SPOOL_BYTES = 8 * 1024 * 1024  # a larger archive waits in a temporary file, not in memory
_decode_promotion = msgspec.json.Decoder(Promotion).decode


@documented("Publish the next version of a model from a tar.gz of its project (body: "
            "application/gzip; query: script, function, language, workers); 201 once it "
            "serves", "admin", response=ActionResult, status=201,
            errors=(400, 401, 403, 404, 409, 413, 415, 422, 500), auth=True)
async def publish_handler(request: web.Request) -> web.Response:
    actor = _admin(request)
    name = request.match_info["model"]
    reloader = request.app[RELOADER]
    publishing.known_model(reloader.service.deployment, name)
    publishing.writable(reloader.service.deployment)
    query = request.query
    script, function = query.get("script"), query.get("function")
    if not script or not function:
        raise BadRequest("the query must name the script (its path in the archive) and the "
                         "function: ?script=src/predict.py&function=predict")
    workers = _whole(query.get("workers"), "workers") if "workers" in query else None
    if request.content_type not in GZIP_TYPES:
        raise UnsupportedMediaType(f"send the project as a tar.gz archive with Content-Type: "
                                   f"application/gzip, not {request.content_type or 'none'}")
    limit = reloader.service.deployment.gateway.publish_max_bytes
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as archive:
        await _receive(request, archive, limit)
        archive.seek(0)
        result = await publishing.publish(reloader, name, archive, script=script,
                                          function=function, language=query.get("language"),
                                          workers=workers, actor=actor)
    return _answer(result, 201)


@documented("Send production traffic to a version (body: {\"version\": N})", "admin",
            request=Promotion, response=ActionResult, errors=(400, 401, 403, 404, 409, 415),
            auth=True)
async def promote_handler(request: web.Request) -> web.Response:
    actor = _admin(request)
    name = request.match_info["model"]
    require_json(request)
    try:
        n = _decode_promotion(await request.read()).version
    except msgspec.DecodeError as exc:
        raise BadRequest(f'the body must be {{"version": N}}: {exc}') from None
    result = await publishing.act(request.app[RELOADER], name,
                                  lambda _: edits.promote(name, n), actor)
    return _answer(result)


@documented("Promote again the version promoted before the current one", "admin",
            request=ReloadRequest, response=ActionResult, errors=(401, 403, 404, 409, 415),
            auth=True)
async def rollback_handler(request: web.Request) -> web.Response:
    actor = _admin(request)
    require_json(request)  # no body to read: the type is what a cross-site form cannot send
    name = request.match_info["model"]
    result = await publishing.act(
        request.app[RELOADER], name,
        lambda audit_log: edits.rollback(name, audit.read_from(audit_log)), actor)
    return _answer(result)


@documented("Stop serving a version (404 afterwards)", "admin", request=ReloadRequest,
            response=ActionResult, errors=(400, 401, 403, 404, 409, 415), auth=True)
async def unpublish_handler(request: web.Request) -> web.Response:
    actor = _admin(request)
    require_json(request)  # as rollback
    name = request.match_info["model"]
    n = _whole(request.match_info["n"], "the version")
    result = await publishing.act(request.app[RELOADER], name,
                                  lambda _: edits.unpublish(name, n), actor)
    return _answer(result)


@documented("A model's versions: number, snapshot, function, created, actor, state, and "
            "which takes production traffic", "admin", response=VersionList,
            errors=(401, 403, 404), auth=True)
async def versions_handler(request: web.Request) -> web.Response:
    _admin(request)
    listed = await asyncio.to_thread(publishing.versions, request.app[RELOADER],
                                     request.match_info["model"])
    return web.Response(body=_encode(listed), headers={**_JSON, "Cache-Control": "no-store"})


class LogPage(msgspec.Struct, frozen=True):
    """``next``: pass it as ``since`` to get only the lines that came after these."""

    lines: list[LogLine]
    next: int


@documented("The last worker log lines of a model (query: since, a sequence number from "
            "`next` or an ISO time; version; limit 1-1000)", "admin", response=LogPage,
            errors=(400, 401, 403, 404), auth=True)
async def logs_handler(request: web.Request) -> web.Response:
    _admin(request)
    service = request.app[SERVICE]
    name = request.match_info["model"]
    publishing.known_model(service.deployment, name)
    query = request.query
    given = query.get("since")
    since: int | str | None = given
    if given is not None and given.isascii() and given.isdigit():
        since = int(given)
    version = _whole(query["version"], "version") if "version" in query else None
    lines = service.worker_logs.lines(name, since, version, _limit(query.get("limit")))
    after = lines[-1].seq if lines else (since if isinstance(since, int) else 0)
    return web.Response(body=_encode(LogPage(lines, after)),
                        headers={**_JSON, "Cache-Control": "no-store"})


class VersionLoad(msgspec.Struct, frozen=True):
    """One version's counters since it was first served (the page diffs two readings for a
    live rate and percentiles): calls by outcome, and the latency histogram's buckets (each
    bucket's count, not cumulative; the last one is past the last bound)."""

    version: int
    requests: int
    errors: int  # answered 5xx
    client_errors: int  # answered 4xx
    latency_buckets: list[int]


class ModelLoad(msgspec.Struct, frozen=True):
    model: str
    bounds_ms: list[float]
    versions: list[VersionLoad]


@documented("A model's per-version call counters and latency histograms, from the gateway's "
            "own stats", "admin", response=ModelLoad, errors=(401, 403, 404), auth=True)
async def load_handler(request: web.Request) -> web.Response:
    _admin(request)
    service = request.app[SERVICE]
    name = request.match_info["model"]
    publishing.known_model(service.deployment, name)
    counted = service.dispatcher.stats if service.dispatcher is not None else {}
    versions = []
    for (model, n), stats in sorted(counted.items()):
        if model != name:
            continue
        codes = stats.codes
        versions.append(VersionLoad(
            version=n, requests=sum(codes.values()),
            errors=sum(c for status, c in codes.items() if status >= 500),
            client_errors=sum(c for status, c in codes.items() if 400 <= status < 500),
            latency_buckets=list(stats.latency)))
    body = ModelLoad(name, [b * 1000.0 for b in BOUNDS_S], versions)
    return web.Response(body=_encode(body), headers={**_JSON, "Cache-Control": "no-store"})


async def _receive(request: web.Request, archive: tempfile.SpooledTemporaryFile[bytes],
                   limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the archive has {request.content_length} bytes; the limit is "
                              f"{limit} (gateway.publish_max_bytes)")
    received = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the archive is over the limit of {limit} bytes "
                                  "(gateway.publish_max_bytes)")
        archive.write(chunk)
    if not received:
        raise BadRequest("the body is empty; send the project as a tar.gz archive "
                         "(`tar -czf - -C PROJECT .`)")


def _answer(result: ActionResult, status: int = 200) -> web.Response:
    return web.Response(body=_encode(result), status=status if result.changed else 200,
                        headers=_JSON)


def _whole(given: str | None, what: str) -> int:
    try:
        return int(given or "")
    except ValueError:
        raise BadRequest(f"{what} must be a whole number, not {given!r}") from None


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
    app.router.add_post("/admin/models/{model}/versions", publish_handler)
    app.router.add_get("/admin/models/{model}/versions", versions_handler)
    app.router.add_get("/admin/models/{model}/logs", logs_handler)
    app.router.add_get("/admin/models/{model}/stats", load_handler)
    app.router.add_post("/admin/models/{model}/promote", promote_handler)
    app.router.add_post("/admin/models/{model}/rollback", rollback_handler)
    app.router.add_post("/admin/models/{model}/versions/{n}/unpublish", unpublish_handler)
