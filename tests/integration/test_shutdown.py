"""Stopping: SIGTERM finishes the calls in flight and leaves no process behind; SIGKILL of the
gateway leaves no orphan either (its pool parents and workers die with it), and the next
gateway removes the socket directory a killed one left."""

import asyncio
import glob
import signal
import tempfile

import yaml

from bench.contenders import descendants
from conftest import TEST_MODELS, eventually, metric, version

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
    async def gone():
        return not any(alive(p) for p in pids)

    await eventually(gone, f"these processes ended: {sorted(pids)}", timeout)


async def test_sigterm_finishes_calls_in_flight_then_exits_cleanly(gateway_factory, http):
    gw = await gateway_factory(CONFIG)
    tree = descendants(gw.process.pid)
    assert len(tree) >= 3  # a pool parent and its two workers
    calls = [asyncio.create_task(http.post(gw.model_url("m"), json={"parameters": [1.0]}))
             for _ in range(4)]

    async def in_the_workers():
        return await metric(http, gw, "modelgate_calls_in_flight", model="m", version="1") == 4

    await eventually(in_the_workers, "the four calls were handed to the workers")
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


def runtime_dirs(pid):
    return glob.glob(f"{tempfile.gettempdir()}/modelgate-{pid}-*")


async def test_a_killed_gateways_socket_directory_is_removed_by_the_next_one(gateway_factory):
    killed, living = await gateway_factory(CONFIG), await gateway_factory(CONFIG)
    assert len(runtime_dirs(killed.process.pid)) == 1
    killed.process.send_signal(signal.SIGKILL)
    await killed.process.wait()
    assert len(runtime_dirs(killed.process.pid)) == 1  # nobody was there to remove it
    following = await gateway_factory(CONFIG)
    assert runtime_dirs(killed.process.pid) == []
    assert len(runtime_dirs(living.process.pid)) == 1  # a live gateway's is left alone
    assert len(runtime_dirs(following.process.pid)) == 1


async def test_sigterm_during_a_reload_stops_the_pools_it_was_starting(gateway_factory):
    gw = await gateway_factory(CONFIG)
    serving = set(descendants(gw.process.pid))
    config = {"models": {**CONFIG["models"], "loading": {
        "access": {"public": True},
        "versions": {1: version(TEST_MODELS / "slow_to_load.py", "predict")}}}}
    gw.config_path.write_text(yaml.safe_dump(config))
    gw.process.send_signal(signal.SIGHUP)
    starting = set()

    async def a_pool_is_starting():
        starting.update(set(descendants(gw.process.pid)) - serving)
        return bool(starting)

    await eventually(a_pool_is_starting, "the reload started a pool", 20)
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

    async def in_the_worker():
        return await metric(http, gw, "modelgate_calls_in_flight", model="m", version="1") == 1

    await eventually(in_the_worker, "the call was handed to v1's worker")
    two["models"]["m"]["versions"][1]["unpublished"] = True
    gw.config_path.write_text(yaml.safe_dump(two))
    gw.process.send_signal(signal.SIGHUP)

    async def retired():  # the switch is done when /readyz no longer lists v1: it drains now
        async with http.get(gw.url + "/readyz") as resp:
            return "m/1" not in (await resp.json())["versions"]

    await eventually(retired, "the reload retired v1", 10)
    gw.process.send_signal(signal.SIGTERM)
    response = await asyncio.wait_for(held, 20)
    assert response.status == 200, await response.text()
    assert await gw.stop(timeout=20) == 0
    await until_gone(tree | set(descendants(gw.process.pid)), timeout=5)
