"""Every error of SPEC §4 in scope: JSON with a stable type, the right status, nothing lost."""

import asyncio

import pytest

from conftest import TEST_MODELS, start_gateway, version

SCRIPT = TEST_MODELS / "py_calls.py"
JSON = {"Content-Type": "application/json"}  # calls need a JSON body type (issue 15, L3)


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    model = {"access": {"public": True}, "versions": {
        1: version(SCRIPT, "area"), 2: {**version(SCRIPT, "area"), "unpublished": True}}}
    running = await start_gateway(tmp_path_factory.mktemp("errors"), {
        "gateway": {"max_body_bytes": 1000},
        "models": {"area": model,
                   "fail": {"access": {"public": True}, "versions": {1: version(SCRIPT, "fail")}}},
    })
    yield running
    await running.stop()


async def error_of(resp, status, error_type):
    assert resp.status == status
    body = await resp.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("data, words", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "request body"),
    (b'{"other": 1}', "no arguments given"),
    (b'{"data": {"width": 1}, "parameters": [1]}', "not both"),
    (b'{"data": [1]}', "request body"),
    (b"", "the body is empty"),
])
async def test_bodies_that_are_not_a_call_are_400_bad_request(gw, http, data, words):
    async with http.post(gw.model_url("area"), data=data, headers=JSON) as resp:
        error = await error_of(resp, 400, "bad_request")
    assert words in error["message"]
    assert error["request_id"] == resp.headers["X-Request-Id"]


@pytest.mark.parametrize("body, words", [
    ({"parameters": [1, 2, 3]}, "area(width, height) takes at most 2"),
    ({"data": {"depth": 1, "width": 2}}, "has no argument(s) named depth"),
    ({"parameters": []}, "missing required argument(s) width"),
])
async def test_arguments_that_do_not_fit_are_400_naming_the_signature(gw, http, body, words):
    async with http.post(gw.model_url("area"), json=body) as resp:
        error = await error_of(resp, 400, "bad_arguments")
    assert words in error["message"]


@pytest.mark.parametrize("path, words", [
    ("/models/nope/latest/model", "no model named `nope`"),
    ("/models/area/9/model", "has no version 9"),
    ("/models/area/2/model", "version 2 of model `area` is unpublished"),
    ("/elsewhere", "no route"),
])
async def test_unknown_models_versions_and_routes_are_404(gw, http, path, words):
    async with http.post(gw.url + path, json={"parameters": [1]}) as resp:
        error = await error_of(resp, 404, "not_found")
    assert words in error["message"]


async def test_a_body_over_the_limit_is_413_with_or_without_content_length(gw, http):
    big = b'{"parameters": ["' + b"x" * 5000 + b'"]}'
    async with http.post(gw.model_url("area"), data=big, headers=JSON) as resp:
        await error_of(resp, 413, "payload_too_large")

    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    async with http.post(gw.model_url("area"), data=chunks(), headers=JSON) as resp:
        await error_of(resp, 413, "payload_too_large")


async def test_an_exception_is_500_with_class_and_message_and_the_traceback_only_in_the_log(
        gw, http):
    async with http.post(gw.model_url("fail"), json={"parameters": ["no wine today"]}) as resp:
        error = await error_of(resp, 500, "model_error")
    assert error["message"] == "ValueError: no wine today"
    assert "Traceback" not in error["message"] and "py_calls.py" not in error["message"]
    # the worker's log line (with the frames) reaches the gateway's output through a pipe
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (b"no wine today" in (output := b"".join(gw.raw_output))
               and b"py_calls.py" in output):
        assert loop.time() < deadline, "the traceback was not logged"
        await asyncio.sleep(0.05)
    async with http.post(gw.model_url("area"), json={"parameters": [2]}) as resp:
        assert resp.status == 200


async def test_a_deep_body_over_the_size_limit_is_413_before_any_parsing(gw, http):
    """Over this gateway's 1000-byte limit the size answers first (the nesting is never
    looked at: the next test reaches it, within the limit)."""
    deep = b'{"parameters": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}"
    async with http.post(gw.url + "/models/area/latest/model", data=deep,
                         headers={"Content-Type": "application/json"}) as resp:
        await error_of(resp, 413, "payload_too_large")
    async with http.get(gw.url + "/healthz") as resp:
        assert resp.status == 200


async def test_deeply_nested_json_within_the_size_limit_is_400_and_the_gateway_lives_on(
        gateway_factory, http):
    gw = await gateway_factory({"models": {"area": {"access": {"public": True},
                                                    "versions": {1: version(SCRIPT, "area")}}}})
    deep = b'{"parameters": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    assert len(deep) < 10 * 2**20  # the default max_body_bytes: the nesting is what answers
    async with http.post(gw.model_url("area"), data=deep, headers=JSON) as resp:
        error = await error_of(resp, 400, "bad_request")
    assert "nested too deeply" in error["message"]
    async with http.get(gw.url + "/healthz") as resp:
        assert resp.status == 200
    async with http.post(gw.model_url("area"), json={"parameters": [3]}) as resp:
        assert (await resp.json())["result"] == 3


async def test_a_wrong_method_is_405_json(gw, http):
    async with http.get(gw.model_url("area")) as resp:
        await error_of(resp, 405, "method_not_allowed")
        assert resp.headers["Allow"] == "POST"


async def test_health_answers_head_as_load_balancers_probe(gw, http):
    for path in ("/healthz", "/readyz"):
        async with http.head(gw.url + path) as resp:
            assert resp.status == 200, path


async def test_a_body_not_declared_json_is_415(gw, http):  # issue 15, L3: no cross-site forms
    async with http.post(gw.model_url("area"), data=b'{"parameters": [4]}',
                         headers={"Content-Type": "text/plain"}) as resp:
        await error_of(resp, 415, "unsupported_media_type")
