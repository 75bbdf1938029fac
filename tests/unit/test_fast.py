"""gateway.web.fast: model calls skip the router, and are answered as through the app."""

import aiohttp
import pytest
from aiohttp import web

from gateway.web.connections import Limits
from gateway.web.fast import FAST_CALLS, FastRunner
from gateway.web.keys import REQUEST_ID
from gateway.web.middleware import errors_as_json


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"match": dict(request.match_info), "app": request.app is APP[0],
                              "rid": request[REQUEST_ID]})


APP: list[web.Application] = []


@pytest.fixture
async def served(unused_tcp_port):
    app = web.Application(middlewares=[errors_as_json])
    APP[:] = [app]
    add = app.router.add_route
    app[FAST_CALLS] = {"latest": add("POST", "/models/{model}/latest/model", echo),
                       "prod": add("POST", "/models/{model}/labels/prod/model", echo),
                       "number": add("POST", r"/models/{model}/{version:\d+}/model", echo)}
    resolved = []
    resolve = app.router.resolve

    async def counting(request):
        resolved.append(request.path)
        return await resolve(request)

    app.router.resolve = counting  # type: ignore[method-assign]
    runner = FastRunner(app, Limits(10, 30, 100), 75, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    async with aiohttp.ClientSession() as session:
        yield f"http://127.0.0.1:{unused_tcp_port}", session, resolved
    await runner.cleanup()


@pytest.mark.parametrize("path, match", [
    ("/models/wine/latest/model", {"model": "wine"}),
    ("/models/wine/labels/prod/model?x=1", {"model": "wine"}),
    ("/models/wine-2.b/12/model", {"model": "wine-2.b", "version": "12"}),
])
async def test_model_calls_skip_the_router_with_the_same_match(served, path, match):
    url, session, resolved = served
    async with session.post(url + path, data=b"{}", headers={"X-Request-Id": "r1"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"match": match, "app": True, "rid": "r1"}
    assert resolved == []


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/models/w%20ne/latest/model", 200),  # percent-encoded: through the app
    ("GET", "/models/wine/latest/model", 405),
    ("POST", "/models/wine/x/model", 404),
])
async def test_anything_else_goes_through_the_app(served, method, path, status):
    url, session, resolved = served
    async with session.request(method, url + path) as resp:
        assert resp.status == status
        body = await resp.json()
        if status == 200:
            assert body["match"] == {"model": "w ne"}
        else:
            assert body["error"]["request_id"]
    assert len(resolved) == 1
