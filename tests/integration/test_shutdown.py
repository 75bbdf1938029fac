"""Stopping: SIGTERM finishes the calls in flight and leaves no process behind; SIGKILL of the
gateway leaves no orphan either (its pool parents and workers die with it)."""

import asyncio
import signal

import yaml

from bench.contenders import descendants
from conftest import TEST_MODELS, version

SCRIPT = TEST_MODELS / "faults.py"
CONFIG = {"models": {"m": {"access": {"public": True},
                           "versions": {1: version(SCRIPT, "slow", workers=2)}}}}


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def until_gone(pids, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(alive(p) for p in pids):
        assert loop.time() < deadline, [p for p in pids if alive(p)]
        await asyncio.sleep(0.1)


async def test_sigterm_finishes_calls_in_flight_then_exits_cleanly(gateway_factory, http):
    gw = await gateway_factory(CONFIG)
    tree = descendants(gw.process.pid)
    assert len(tree) >= 3  # a pool parent and its two workers
    calls = [asyncio.create_task(http.post(gw.model_url("m"), json={"parameters": [1.0]}))
             for _ in range(4)]
    await asyncio.sleep(0.3)  # the calls are in the workers now
    gw.process.send_signal(signal.SIGTERM)
    responses = await asyncio.wait_for(asyncio.gather(*calls), 20)
    assert [r.status for r in responses] == [200] * 4
    assert await gw.stop() == 0
    await until_gone(tree)


async def test_sigkill_of_the_gateway_leaves_no_orphans(gateway_factory, http):
    gw = await gateway_factory(CONFIG)
    tree = descendants(gw.process.pid)
    assert len(tree) >= 3
    gw.process.send_signal(signal.SIGKILL)
    await gw.process.wait()
    await until_gone(tree, timeout=10)


async def test_sigterm_during_a_reload_stops_the_pools_it_was_starting(gateway_factory):
    gw = await gateway_factory(CONFIG)
    serving = set(descendants(gw.process.pid))
    config = {"models": {**CONFIG["models"], "loading": {
        "access": {"public": True},
        "versions": {1: version(TEST_MODELS / "slow_to_load.py", "predict")}}}}
    gw.config_path.write_text(yaml.safe_dump(config))
    gw.process.send_signal(signal.SIGHUP)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (starting := set(descendants(gw.process.pid)) - serving):
        assert loop.time() < deadline, "the reload started no pool"
        await asyncio.sleep(0.05)
    gw.process.send_signal(signal.SIGTERM)  # the new pool is still loading its script
    assert await gw.stop(timeout=20) == 0
    await until_gone(serving | starting, timeout=5)


async def test_sigterm_while_a_reload_drains_a_retired_pool_lets_its_call_finish(
        gateway_factory, http):
    two = {"models": {"m": {"access": {"public": True}, "versions": {
        1: version(SCRIPT, "slow", workers=1), 2: version(SCRIPT, "slow", workers=1)}}}}
    gw = await gateway_factory(two)
    tree = set(descendants(gw.process.pid))
    held = asyncio.create_task(http.post(gw.model_url("m", 1), json={"parameters": [3.0]}))
    await asyncio.sleep(0.5)  # the call is in v1's worker
    two["models"]["m"]["versions"][1]["unpublished"] = True
    gw.config_path.write_text(yaml.safe_dump(two))
    gw.process.send_signal(signal.SIGHUP)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:  # the switch is done when /readyz no longer lists v1: it drains now
        async with http.get(gw.url + "/readyz") as resp:
            if "m/1" not in (await resp.json())["versions"]:
                break
        assert loop.time() < deadline, "the reload never retired v1"
        await asyncio.sleep(0.05)
    gw.process.send_signal(signal.SIGTERM)
    response = await asyncio.wait_for(held, 20)
    assert response.status == 200, await response.text()
    assert await gw.stop(timeout=20) == 0
    await until_gone(tree | set(descendants(gw.process.pid)), timeout=5)
