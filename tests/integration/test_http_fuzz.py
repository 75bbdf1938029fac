"""Fuzzing the HTTP surface with Hypothesis: random bytes, JSON shapes, huge and deep bodies,
content types, headers, paths and methods. Never a 5xx other than the defined ones, every error
in the standard JSON shape, and the gateway still alive at the end."""

import asyncio

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TEST_MODELS, start_gateway, version

ALLOWED_5XX = {"model_error", "worker_lost", "unavailable", "overloaded", "timeout"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=30)

bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: __import__("msgspec").json.encode(v)),
    st.fixed_dictionaries({"parameters": st.lists(json_values, max_size=4)}).map(
        lambda v: __import__("msgspec").json.encode(v)),
    st.fixed_dictionaries({"data": st.dictionaries(st.text(max_size=6), json_values,
                                                   max_size=4)}).map(
        lambda v: __import__("msgspec").json.encode(v)),
    st.integers(1, 60_000).map(lambda n: b'{"parameters": [' + b"[" * n + b"]" * n + b"]}"),
    st.integers(1, 3).map(lambda n: b'{"parameters": ["' + b"x" * (n * 700_000) + b'"]}'),
)
paths = st.sampled_from(["/models/echo/latest/model", "/models/echo/1/model",
                         "/models/echo/labels/prod/model", "/models/echo/99/model",
                         "/models/none/latest/model", "/models/echo/x/model", "/", "/healthz",
                         "/readyz", "/%00", "/models//latest/model", "/models/echo/latest"])
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "text/plain", "multipart/form-data",
                                     "application/x-www-form-urlencoded", "", "x/y; q=1"]),
    "X-Request-Id": header_text | st.just("r" * 20_000),
    "Authorization": header_text,
})


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("fuzz"), {
        "gateway": {"max_body_bytes": 1_000_000},
        "models": {"echo": {"access": {"public": True},
                            "versions": {1: version(TEST_MODELS / "faults.py", "echo",
                                                    workers=2)}}}})
    yield running
    await running.stop()


async def test_random_requests_never_break_the_gateway(gw):
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def probe(method, path, body, extra):
            try:
                async with http.request(method, gw.url + path, data=body, headers=extra,
                                        skip_auto_headers=["Content-Type"]) as resp:
                    payload = await resp.read()
                    status = resp.status
            except aiohttp.ClientError:
                return  # the client refused to send it (e.g. a header it rejects)
            if status >= 500:
                import msgspec

                error = msgspec.json.decode(payload)["error"]
                if error["type"] not in ALLOWED_5XX:
                    failures.append(f"{method} {path} -> {status} {error}")
            if status >= 400 and path.startswith("/models/"):
                import msgspec

                body_json = msgspec.json.decode(payload)
                assert set(body_json["error"]) >= {"type", "message"}

        @settings(max_examples=150, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(["POST", "GET", "PUT", "DELETE"]), paths, bodies, headers)
        def fuzz(method, path, body, extra):
            asyncio.run_coroutine_threadsafe(probe(method, path, body, extra), loop).result(60)

        await loop.run_in_executor(None, fuzz)
        async with http.get(gw.url + "/healthz") as resp:
            assert resp.status == 200
    assert gw.process.returncode is None
    assert not failures, failures[:5]
