"""Adaptive batching through the real gateway and real batched workers."""

import asyncio

from conftest import TEST_MODELS, eventually, metric, require, version

SCRIPT = TEST_MODELS / "py_batching.py"


def batched(function, **options):
    return version(SCRIPT, function, workers=1, batch={"max_size": 16, "max_wait_ms": 5},
                   **options)


async def test_concurrent_calls_are_batched_and_each_caller_gets_its_own_result(
        gateway_factory, http):
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("sizes")}}}})

    async def call(i):
        async with http.post(gw.model_url("b"), json={"parameters": [i]}) as resp:
            assert resp.status == 200
            return (await resp.json())["result"]

    results = await asyncio.gather(*(call(i) for i in range(300)))
    assert [r["value"] for r in results] == list(range(300))
    assert max(r["batch"] for r in results) > 1  # concurrent calls shared function calls
    assert all(r["batch"] <= 16 for r in results)


async def test_a_lone_call_is_a_batch_of_one(gateway_factory, http):
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("sizes")}}}})
    for i in range(3):
        async with http.post(gw.model_url("b"), json={"parameters": [i]}) as resp:
            assert (await resp.json())["result"] == {"value": i, "batch": 1}


async def test_named_arguments_are_batched_per_name(gateway_factory, http):
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("scaled")}}}})

    async def call(body):
        async with http.post(gw.model_url("b"), json=body) as resp:
            return resp.status, (await resp.json())

    bodies = [{"data": {"x": i, "factor": 3}} for i in range(40)] + [
        {"data": {"x": i}} for i in range(40)]
    results = await asyncio.gather(*(call(b) for b in bodies))
    assert [r[1]["result"] for r in results] == [3 * i for i in range(40)] + list(range(40))


async def test_a_wrong_number_of_results_fails_every_call_of_the_batch_clearly(
        gateway_factory, http):
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("short")}}}})
    async with http.post(gw.model_url("b"), json={"parameters": [1]}) as resp:
        assert resp.status == 500
        error = (await resp.json())["error"]
    assert error["type"] == "model_error"
    assert "one result per input" in error["message"]
    assert "1 inputs and returned 0 results" in error["message"]


async def test_an_invalid_body_fails_alone_in_its_batch(gateway_factory, http):
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("sizes")}}}})

    async def call(data):
        async with http.post(gw.model_url("b"), data=data,
                             headers={"Content-Type": "application/json"}) as resp:
            return resp.status

    statuses = await asyncio.gather(*(
        call(b"{not json" if i % 10 == 0 else b'{"parameters": [%d]}' % i) for i in range(100)))
    assert statuses.count(400) == 10
    assert statuses.count(200) == 90


async def test_r_functions_are_batched_too(gateway_factory, http):
    require("rpy2", "MODELGATE_TEST_SKIP_R")
    gw = await gateway_factory({"models": {"b": {"access": {"public": True}, "versions": {
        1: version(TEST_MODELS / "r_models.R", "sizes", workers=1,
                   batch={"max_size": 16, "max_wait_ms": 5})}}}})

    async def call(i):
        async with http.post(gw.model_url("b"), json={"parameters": [i]}) as resp:
            assert resp.status == 200
            return (await resp.json())["result"]

    results = await asyncio.gather(*(call(i) for i in range(100)))
    assert [r["value"] for r in results] == list(range(100))
    assert max(r["batch"] for r in results) > 1


async def test_calls_that_queued_one_by_one_behind_a_batch_form_the_next_batch(
        gateway_factory, http, exchange_dir):
    started, release = exchange_dir / "started.txt", exchange_dir / "release"
    gw = await gateway_factory({"models": {"b": {
        "access": {"public": True}, "versions": {1: batched("held_sizes")},
        "env": {"STARTED_FILE": str(started), "RELEASE_FILE": str(release)}}}})

    async def call(i):
        async with http.post(gw.model_url("b"), json={"parameters": [i]}) as resp:
            return (await resp.json())["result"]

    async def in_flight(count):
        return await metric(http, gw, "modelgate_calls_in_flight", model="b",
                            version="1") == count

    async def first_batch_running():
        return started.exists() and started.read_text().split() == ["1"]

    first = asyncio.create_task(call(0))
    await eventually(first_batch_running, "the first batch (of one) runs in the worker")
    later = []
    for i in range(1, 6):  # each arrives alone (one frame per call): the next waits for it
        later.append(asyncio.create_task(call(i)))
        await eventually(lambda n=i + 1: in_flight(n), f"call {i} reached the worker")
    release.touch()
    assert (await first)["batch"] == 1
    assert [r["batch"] for r in await asyncio.gather(*later)] == [5] * 5
    assert started.read_text().split() == ["1", "5"]
