"""The model catalogue (SPEC §7): ``GET /models`` and ``GET /models/{model}``.

What a client needs to call the models its token may see: their routing, which version answers
``latest`` and ``labels/prod``, and per version its language, function, version id, workers and
the URLs that call it. The same visibility rule as the web page's list
(:meth:`~gateway.serving.service.Service.visible_models`): public models for anyone, plus the
models the presented token may call; a token that is not known is 401.

For one model the answers are those of a call to it (SPEC §4): unknown model 404, a restricted
one 401 without a token and 403 with a token it does not allow. Answering 404 there would hide
nothing, since the call routes already answer 401/403 for a model that exists.

URLs are paths from the gateway's root: a ``Host`` header is never echoed into a body, and a
client behind a proxy joins them to the base URL it used.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from gateway.errors import Forbidden, NotFound, Unauthorized
from gateway.serving.routing import ModelRoutes
from gateway.serving.service import Service
from gateway.web.keys import SERVICE
from gateway.web.openapi import documented

HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store",
           "Vary": "Authorization"}


class VersionUrls(msgspec.Struct, frozen=True, kw_only=True):
    model: str  # POST /models/{model}/{n}/model
    v2_infer: str  # POST /v2/models/{model}/versions/{n}/infer (Open Inference Protocol)


class CatalogueVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One version; an unpublished one has no version id, workers or URLs (calls get 404)."""

    number: int
    language: str
    function: str
    published: bool
    version_id: str | None  # the `model_version` of responses: a hash of what it computes
    workers_ready: int
    workers_expected: int
    ready: bool
    urls: VersionUrls | None


class ModelUrls(msgspec.Struct, frozen=True, kw_only=True):
    latest: str  # POST: the latest published version
    production: str  # POST: the promoted version (advanced routing), else the latest


class CatalogueModel(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    public: bool
    routing: str  # basic | advanced
    promoted: int | None
    latest: int
    production: int
    urls: ModelUrls
    versions: list[CatalogueVersion]


class Catalogue(msgspec.Struct, frozen=True, kw_only=True):
    models: list[CatalogueModel]


def describe(routes: ModelRoutes) -> CatalogueModel:
    name = routes.name
    versions = []
    for n, config in sorted(routes.config.versions.items()):
        served = routes.versions.get(n)
        pool = served.pool if served is not None else None
        versions.append(CatalogueVersion(
            number=n, language=config.language, function=config.function,
            published=served is not None,
            version_id=pool.version_id if pool is not None else None,
            workers_ready=len(pool.workers) if pool is not None else 0,
            workers_expected=pool.expected_workers if pool is not None else 0,
            ready=pool is not None and pool.ready,
            urls=None if served is None else VersionUrls(
                model=f"/models/{name}/{n}/model",
                v2_infer=f"/v2/models/{name}/versions/{n}/infer"),
        ))
    return CatalogueModel(
        name=name, description=routes.config.description, public=routes.public,
        routing=routes.config.routing, promoted=routes.config.promoted, latest=routes.latest,
        production=routes.production,
        urls=ModelUrls(latest=f"/models/{name}/latest/model",
                       production=f"/models/{name}/labels/prod/model"),
        versions=versions,
    )


def find(service: Service, name: str, authorization: str | None) -> ModelRoutes:
    """The model ``name`` if the caller may see it; the errors a call to it would get if not."""
    models, token = service.visible_models(authorization)  # 401 for an unknown token
    for routes in models:
        if routes.name == name:
            return routes
    if name not in service.table.models:
        raise NotFound(f"no model named `{name}`")
    if token is None:
        raise Unauthorized(f"model `{name}` needs an access token: send "
                           "`Authorization: Bearer <token>`")
    raise Forbidden(f"token `{token}` may not call model `{name}`")


@documented("The models the caller may call", "catalogue", response=Catalogue,
            errors=(401,), auth=True)
async def list_models(request: web.Request) -> web.Response:
    models, _ = request.app[SERVICE].visible_models(request.headers.get("Authorization"))
    body = msgspec.json.encode(Catalogue(models=[describe(m) for m in models]))
    return web.Response(body=body, headers=HEADERS)


@documented("One model: routing, versions, workers and call URLs", "catalogue",
            response=CatalogueModel, errors=(401, 403, 404), auth=True)
async def get_model(request: web.Request) -> web.Response:
    routes = find(request.app[SERVICE], request.match_info["model"],
                  request.headers.get("Authorization"))
    return web.Response(body=msgspec.json.encode(describe(routes)), headers=HEADERS)


def install(app: web.Application) -> None:
    app.router.add_get("/models", list_models)
    app.router.add_get("/models/{model}", get_model)
