"""The web model tester (SPEC §7): ``GET /`` and its static files, served by the gateway itself.

The page is plain HTML, CSS and JavaScript from ``gateway/web/static`` (no build step, nothing
fetched from elsewhere, which the Content-Security-Policy enforces). Files are read once, at
start-up, and revalidated by ETag. ``GET /ui/models.json`` gives the page what the tester
needs about the models the caller may see: public models for anyone, and with a token the
models that token may call.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
from aiohttp import web

from gateway.serving.routing import ModelRoutes
from gateway.web.keys import SERVICE
from gateway.web.openapi import documented

STATIC = Path(__file__).resolve().parent.parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Cache-Control": "no-cache",  # always revalidate: a redeploy shows at once
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
}
DEFAULT_EXAMPLE: dict[str, list[object]] = {"parameters": []}  # a call with no arguments


class UiModel(msgspec.Struct, frozen=True):
    """One model as the tester shows it; ``example`` is JSON text, so numbers keep the form
    the config gave them (``11.0`` stays a float, which a function may care about)."""

    name: str
    description: str
    public: bool
    routing: str
    versions: list[int]
    latest: int
    production: int
    example: str


class UiCatalogue(msgspec.Struct, frozen=True):
    models: list[UiModel]
    token: str | None  # the name of the token presented, if any


class StaticFile(msgspec.Struct, frozen=True):
    body: bytes
    content_type: str
    etag: str


def load_static(directory: Path = STATIC) -> dict[str, StaticFile]:
    files = {}
    for path in sorted(directory.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        files[path.name] = StaticFile(body, content_type,
                                      f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return files


def _respond(request: web.Request, file: StaticFile) -> web.Response:
    headers = {**HEADERS, "ETag": file.etag}
    if request.headers.get("If-None-Match") == file.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, headers={**headers, "Content-Type": file.content_type})


def ui_model(routes: ModelRoutes) -> UiModel:
    example = routes.config.example
    return UiModel(
        name=routes.name, description=routes.config.description, public=routes.public,
        routing=routes.config.routing, versions=sorted(routes.versions), latest=routes.latest,
        production=routes.production,
        example=msgspec.json.encode(DEFAULT_EXAMPLE if example is None else example).decode(),
    )


@documented("The models the caller may see, for the web tester", "ui", response=UiCatalogue,
            errors=(401,), auth=True)
async def models_json(request: web.Request) -> web.Response:
    # an unknown token raises 401, which the app's middleware answers with the request id
    models, token = request.app[SERVICE].visible_models(request.headers.get("Authorization"))
    body = msgspec.json.encode(UiCatalogue([ui_model(m) for m in models], token))
    return web.Response(body=body, headers={"Content-Type": "application/json",
                                            "Cache-Control": "no-store"})


def install(app: web.Application) -> None:
    files = load_static()

    @documented("The web page: the models, a tester and snippets for each", "ui",
                content_type="text/html")
    async def index(request: web.Request) -> web.Response:
        return _respond(request, files["index.html"])

    @documented("The web page's scripts, styles and images", "ui", content_type="*/*",
                errors=(404,))
    async def static(request: web.Request) -> web.Response:
        file = files.get(request.match_info["name"])
        if file is None:
            raise web.HTTPNotFound()
        return _respond(request, file)

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/ui/models.json", models_json)
