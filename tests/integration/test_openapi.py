"""The OpenAPI document at ``/openapi.json``: valid OpenAPI, complete (every route of the app),
true to the real answers, and schemathesis, fuzzing the live gateway from it, finds no server
error and no answer that contradicts it."""

import asyncio
import hashlib
import shutil
import sys

import msgspec
import pytest
import yaml
from aiohttp import web

from conftest import TEST_MODELS, start_gateway, version
from gateway.api import CallResponse, ErrorBody
from gateway.config import load
from gateway.tensors import InferResponse
from gateway.web import openapi
from gateway.web.app import create_app
from gateway.web.keys import SERVICE
from gateway.web.routes.v2 import V2Error

SCRIPT = TEST_MODELS / "v2_functions.py"
ADMIN_TOKEN = "fuzz-admin-token"  # schemathesis sends it: the authorized paths are fuzzed too
CONFIG = {
    "gateway": {"async_db": ":memory:", "max_body_bytes": 100_000},
    "tokens": {"ci": {"sha256": hashlib.sha256(b"fuzz-token").hexdigest()},
               "fuzz-admin": {"sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
                              "admin": True}},
    "models": {
        "echo": {"access": {"public": True},
                 "versions": {1: version(SCRIPT, "anything", workers=2)}},
        "locked": {"access": {"public": False, "tokens": ["ci", "fuzz-admin"]},
                   "versions": {1: version(SCRIPT, "anything")}},
    },
}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("openapi"), CONFIG)
    yield running
    await running.stop()


@pytest.fixture
def app(tmp_path):
    """The gateway's app, built and not started: its router is all the document needs."""
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    built = create_app(load(str(path)))
    yield built
    shutil.rmtree(built[SERVICE].runtime_dir, ignore_errors=True)


# ------------------------------------------------------------------ complete


def test_every_route_of_the_gateway_is_documented(app):
    missing = openapi.undocumented_routes(app)
    assert not missing, ("routes without @documented (gateway/web/openapi.py), add it to their "
                         f"handlers: {missing}")
    paths = openapi.build(app)["paths"]
    call = paths["/models/{model}/{version}/model"]["post"]  # {version:\d+} in the router
    assert {p["name"]: p["schema"]["type"] for p in call["parameters"]} == {
        "model": "string", "version": "integer"}
    assert not [p for p in paths if ":" in p]
    assert "head" not in paths["/healthz"] and "head" not in paths["/v2/health/live"]
    assert "/v2/{tail}" not in paths  # the /v2 catch-all is hidden, on purpose


async def test_a_route_without_an_operation_is_reported():
    @openapi.documented("known", "test")
    async def known(request):
        raise AssertionError

    async def forgotten(request):
        raise AssertionError

    @openapi.hidden("not part of the API")
    async def internal(request):
        raise AssertionError

    app = web.Application()
    app.router.add_get("/known", known)  # and the HEAD aiohttp adds: not reported
    app.router.add_get(r"/forgotten/{n:\d+}", forgotten)
    app.router.add_post("/internal", internal)
    assert openapi.undocumented_routes(app) == ["GET /forgotten/{n}"]


# ------------------------------------------------------------------ valid and true


async def test_the_served_document_is_valid_openapi(gw, http):
    from openapi_spec_validator import validate

    async with http.get(f"{gw.url}/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        document = msgspec.json.decode(await resp.read())
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"},
        "basic": {"type": "http", "scheme": "basic"}}
    call = document["paths"]["/models/{model}/latest/model"]["post"]
    assert call["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Envelope"}
    assert set(call["responses"]) == {"200", "400", "401", "403", "404", "413", "415", "500",
                                      "502", "503", "504"}
    assert call["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    assert document["paths"]["/"]["get"]["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}}


async def test_real_answers_decode_as_their_documented_types(gw, http):
    url = gw.model_url("echo")
    async with http.post(url, json={"data": {"x": [1, 2]}}) as resp:
        answer = msgspec.json.decode(await resp.read(), type=CallResponse)
    assert answer.result == {"args": [], "kwargs": {"x": [1, 2]}}
    assert answer.release.model == "echo" and answer.release.model_version_number == 1
    async with http.post(gw.model_url("locked"), json={"parameters": []}) as resp:
        error = msgspec.json.decode(await resp.read(), type=ErrorBody)
    assert error.error.type == "unauthorized"
    infer = {"inputs": [{"name": "x", "shape": [], "datatype": "INT64", "data": [3]}]}
    async with http.post(f"{gw.url}/v2/models/echo/infer", json=infer) as resp:
        v2 = msgspec.json.decode(await resp.read(), type=InferResponse)
    assert [o.name for o in v2.outputs] == ["args", "kwargs"]
    async with http.post(f"{gw.url}/v2/models/nope/infer", json=infer) as resp:
        assert msgspec.json.decode(await resp.read(), type=V2Error).error


# ------------------------------------------------------------------ fuzzed from the document


SCHEMATHESIS_CONFIG = """
[dictionaries.models]
values = ["echo", "locked"]

[dictionaries.versions]
values = [1, 2]

[dictionaries.files]
values = ["app.js", "style.css", "favicon.svg", "index.html"]

[parameters]
"path.model" = { dictionary = "models", probability = 0.8 }
"path.version" = { dictionary = "versions", probability = 0.5 }
"path.name" = { dictionary = "files", probability = 0.5 }
"""
# the document's bearer scheme gets the admin token: admin routes and the restricted model are
# fuzzed past their 401/403 (the coverage phase still sends requests without it)
SCHEMATHESIS_AUTH = f"""
[auth.openapi.bearer]
bearer = "{ADMIN_TOKEN}"
"""
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "unsupported_method")


@pytest.mark.timeout(180)
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(gw, tmp_path):
    """Bounded: 30 examples per operation (--max-time would fuzz until it is spent), one
    worker (hypothesis' lambda parsing is not thread-safe on Python 3.11): about 15 s. The
    seed is in the output, to replay a failure."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG + SCHEMATHESIS_AUTH)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{gw.url}/openapi.json", "--checks", ",".join(CHECKS), "--max-examples", "30",
        "--phases", "coverage,fuzzing,stateful", "--workers", "1",
        "--request-timeout", "10", "--generation-database", "none", "--no-color",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 150)
    except TimeoutError:
        process.kill()
        raise
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "passed" in report
    assert not gw.events("unhandled")
    # the authorized paths were fuzzed, not only their refusals
    assert any(e.get("actor") == "fuzz-admin" for e in gw.events("reloaded")), \
        "schemathesis never reached /admin/reload with its token"
    assert any(e.get("model") == "locked" and e.get("status") == 200
               for e in gw.events("request")), "schemathesis never called `locked` with a token"
