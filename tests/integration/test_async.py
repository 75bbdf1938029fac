"""Async predictions (SPEC §3): accepted at once, polled to their end, tokens on both calls,
bounded, kept across a restart (SIGTERM or SIGKILL), and expired after their TTL."""

import asyncio
import hashlib
import signal
import sqlite3

import pytest

from conftest import TEST_MODELS, start_gateway, version

SCRIPT = TEST_MODELS / "ui_functions.py"
ASYNC = "/api/modelApis/async/v1"
TOKENS = {"ci-bot": "async-ci-token-1", "ops": "async-ops-token-2", "other": "async-other-3"}
BEARER = {name: {"Authorization": f"Bearer {token}"} for name, token in TOKENS.items()}
FINAL = ("succeeded", "failed")

pytestmark = pytest.mark.timeout(90)


def public(function, **options):
    return {"access": {"public": True}, "versions": {1: version(SCRIPT, function, **options)}}


def deployment(**gateway):
    return {
        "gateway": gateway,
        "tokens": {name: {"sha256": hashlib.sha256(t.encode()).hexdigest()}
                   for name, t in TOKENS.items()},
        "models": {
            "double": public("double", workers=2),
            "slow": public("slow_double", workers=1),
            "refuse": public("refuse"),
            "secret": {"access": {"public": False, "tokens": ["ci-bot", "ops"]},
                       "versions": {1: version(SCRIPT, "double")}},
        },
    }


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("async"), deployment())
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def small(tmp_path_factory):
    """A gateway with a short result TTL and room for two queued predictions."""
    running = await start_gateway(tmp_path_factory.mktemp("async-small"), deployment(
        async_result_ttl_s=1, async_max_queued=2))
    yield running
    await running.stop()


async def submit(http, gw, model, body, headers=None):
    payload = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with http.post(f"{gw.url}{ASYNC}/{model}", headers=headers or {}, **payload) as resp:
        assert resp.status == 202, await resp.text()
        accepted = await resp.json()
        assert set(accepted) == {"asyncPredictionId"}
        assert resp.headers["Location"] == f"{ASYNC}/{model}/{accepted['asyncPredictionId']}"
        return accepted["asyncPredictionId"]


async def state(http, gw, model, pid, headers=None):
    async with http.get(f"{gw.url}{ASYNC}/{model}/{pid}", headers=headers or {}) as resp:
        return resp.status, await resp.json()


async def until(http, gw, model, pid, wanted=FINAL, headers=None, timeout=30.0):
    """Poll (bounded) until the prediction's status is one of ``wanted``; its last body."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await state(http, gw, model, pid, headers)
        assert status == 200, body
        if body["status"] in wanted:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"still {body} after {timeout} s"
        await asyncio.sleep(0.02)


async def test_a_prediction_is_accepted_at_once_then_polled_to_its_result(gw, http):
    pid = await submit(http, gw, "double", {"parameters": [21]})
    assert await until(http, gw, "double", pid) == {"status": "succeeded", "version": 1,
                                                      "result": {"doubled": 42}}
    deadline = asyncio.get_running_loop().time() + 5
    while not any(line.get("call") == "async_submit" for line in gw.events("request")):
        assert asyncio.get_running_loop().time() < deadline, "no request line for the submit"
        await asyncio.sleep(0.05)


async def test_a_prediction_is_queued_then_running_before_it_succeeds(gw, http, exchange_dir):
    release = exchange_dir / "release"  # the first runs until the test has seen it run
    try:
        first = await submit(http, gw, "slow", {"data": {"x": 1, "release": str(release)}})
        second = await submit(http, gw, "slow", {"data": {"x": 2, "seconds": 0}})
        assert await until(http, gw, "slow", first, wanted=("running",)) == {
            "status": "running", "version": 1}
        # One worker: the second waits its turn here, not in the pool.
        assert await state(http, gw, "slow", second) == (200, {"status": "queued"})
    finally:
        release.touch()
    assert (await until(http, gw, "slow", first))["result"] == 2
    assert (await until(http, gw, "slow", second))["result"] == 4


@pytest.mark.parametrize("model, body, error_type, words", [
    ("refuse", {"parameters": [3]}, "model_error", "ValueError: cannot predict from 3"),
    ("double", {"parameters": [1, 2]}, "bad_arguments", "takes at most 1"),
])
async def test_a_failing_call_ends_failed_with_its_error(gw, http, model, body, error_type,
                                                         words):
    pid = await submit(http, gw, model, body)
    final = await until(http, gw, model, pid)
    assert set(final) == {"status", "version", "errors"} and final["status"] == "failed"
    [error] = final["errors"]
    assert set(error) == {"type", "message"} and error["type"] == error_type
    assert words in error["message"]


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not valid JSON"),
    (b"\x00", "not valid JSON"),
    (b"{}", "no arguments given"),
    (b'{"data": {"x": 1}, "parameters": [1]}', "not both"),
    (b'{"parameters": 3}', "Expected `array | null`"),
    # past 64 KiB the body is checked in a thread (not on the event loop): the same answers
    (b'{"parameters": [' + b"1," * 40_000 + b"}", "not valid JSON"),
    (b'{"parameters": ' + b"[" * 200 + b"1" + b"]" * 200 + b', "pad": "' + b"x" * 70_000
     + b'"}', "nested more than"),
])
async def test_a_body_that_is_not_a_call_is_refused_at_submit(gw, http, body, words):
    async with http.post(f"{gw.url}{ASYNC}/double", data=body,
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
    assert error["type"] == "bad_request" and words in error["message"]
    assert "Location" not in resp.headers  # nothing was stored


async def test_an_unknown_model_or_prediction_is_404(gw, http):
    async with http.post(f"{gw.url}{ASYNC}/nope", json={"parameters": [1]}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["type"] == "not_found"
    assert (await state(http, gw, "nope", "0" * 32))[0] == 404
    assert (await state(http, gw, "double", "0" * 32))[0] == 404
    pid = await submit(http, gw, "double", {"parameters": [1]})
    assert (await state(http, gw, "refuse", pid))[0] == 404  # the id of another model


async def test_a_restricted_model_needs_the_token_on_both_calls(gw, http):
    async with http.post(f"{gw.url}{ASYNC}/secret", json={"parameters": [5]}) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["type"] == "unauthorized"
        assert "Bearer" in resp.headers["WWW-Authenticate"]
    async with http.post(f"{gw.url}{ASYNC}/secret", json={"parameters": [5]},
                         headers=BEARER["other"]) as resp:
        assert resp.status == 403
    pid = await submit(http, gw, "secret", {"parameters": [5]}, BEARER["ci-bot"])
    status, body = await state(http, gw, "secret", pid)
    assert status == 401 and body["error"]["type"] == "unauthorized"
    assert (await state(http, gw, "secret", pid, BEARER["other"]))[0] == 403
    # Allowed for the model, but not the token that submitted it: as if it did not exist.
    assert (await state(http, gw, "secret", pid, BEARER["ops"]))[0] == 404
    assert (await until(http, gw, "secret", pid, headers=BEARER["ci-bot"]))["result"] == {
        "doubled": 10}


async def test_the_queue_is_bounded_with_503_overloaded(small, http, exchange_dir):
    release = exchange_dir / "release"  # all three stay unfinished until the 503 is seen
    try:
        running = await submit(http, small, "slow",
                               {"data": {"x": 1, "release": str(release)}})
        await until(http, small, "slow", running, wanted=("running",))
        queued = [await submit(http, small, "slow",
                               {"data": {"x": n, "release": str(release)}}) for n in (2, 3)]
        async with http.post(f"{small.url}{ASYNC}/double", json={"parameters": [1]}) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"]
            assert (await resp.json())["error"]["type"] == "overloaded"
    finally:
        release.touch()
    for pid in (running, *queued):
        assert (await until(http, small, "slow", pid))["status"] == "succeeded"
    await submit(http, small, "double", {"parameters": [1]})  # room again


async def test_results_expire_after_their_ttl(small, http):
    pid = await submit(http, small, "double", {"parameters": [4]})
    assert (await until(http, small, "double", pid))["status"] == "succeeded"
    deadline = asyncio.get_running_loop().time() + 10
    while (await state(http, small, "double", pid))[0] != 404:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    database = small.config_path.parent / "async.sqlite3"
    while _rows(database, pid):  # the periodic cleanup deletes the row itself
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)


def _rows(database, pid):
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM predictions WHERE id = ?", (pid,)).fetchone()[0]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
async def test_predictions_survive_a_restart_and_all_succeed(tmp_path, http, stop_signal):
    config = deployment()
    first = await start_gateway(tmp_path, config)
    second = None
    try:
        pids = [await submit(http, first, "slow", {"data": {"x": n, "seconds": 1.0}})
                for n in range(4)]
        await first.stop(stop_signal)
        assert (tmp_path / "async.sqlite3").exists()
        second = await start_gateway(tmp_path, config)
        [started] = second.events("async_predictions")
        assert started["requeued"] >= 3  # at most one finished while SIGTERM drained it
        for n, pid in enumerate(pids):
            final = await until(http, second, "slow", pid, timeout=30)
            assert final == {"status": "succeeded", "version": 1, "result": 2 * n}
    finally:
        for gw in (first, second):
            if gw is not None and gw.process.returncode is None:
                gw.process.kill()
                await gw.process.wait()


async def test_an_unusable_database_path_falls_back_to_memory_with_a_warning(tmp_path, http):
    """A config mounted read-only must not stop the gateway: async calls still work."""
    gw = await start_gateway(tmp_path, deployment(async_db="no-such-dir/async.sqlite3"))
    try:
        [warning] = gw.events("async_db_unavailable")
        assert "gateway.async_db" in warning["consequence"]
        pid = await submit(http, gw, "double", {"parameters": [2]})
        assert (await until(http, gw, "double", pid))["result"] == {"doubled": 4}
    finally:
        await gw.stop()


async def test_async_predictions_have_their_own_time_limit_and_name_their_version(
        tmp_path, http):
    """A 2 s call on a version with ``timeout_s: 0.5``: a synchronous call times out, an
    async prediction of it succeeds (``async_timeout_s``), and one past its own
    ``async_timeout_s`` fails as ``timeout``. The status names the version that answered."""
    faults = TEST_MODELS / "faults.py"
    gw = await start_gateway(tmp_path, {
        "gateway": {"async_timeout_s": 30},
        "models": {
            "long": {"access": {"public": True}, "routing": "advanced", "promoted": 2,
                     "versions": {1: version(faults, "slow", timeout_s=0.5),
                                  2: version(faults, "slow", timeout_s=0.5, workers=2)}},
            "capped": {"access": {"public": True}, "versions": {
                1: version(faults, "slow", timeout_s=0.5, async_timeout_s=1)}},
        }})
    try:
        async with http.post(gw.model_url("long", "prod"), json={"parameters": [2]}) as resp:
            assert resp.status == 504 and (await resp.json())["error"]["type"] == "timeout"
        pid = await submit(http, gw, "long", {"parameters": [2]})
        final = await until(http, gw, "long", pid, timeout=30)
        assert final["status"] == "succeeded" and final["version"] == 2, final
        pid = await submit(http, gw, "capped", {"parameters": [3]})
        final = await until(http, gw, "capped", pid, timeout=30)
        assert final["status"] == "failed" and final["version"] == 1, final
        [error] = final["errors"]
        assert error["type"] == "timeout" and "within 1 s" in error["message"], error
    finally:
        await gw.stop()
