"""Worker processes: the script runs once, the environment is the model's, memory is shared,
many concurrent calls each get their own answer, and user code cannot take a worker down."""

import asyncio
from pathlib import Path

from conftest import TEST_MODELS, token_sha256, version

SCRIPT = TEST_MODELS / "py_calls.py"


def model(function, **options):
    return {"access": {"public": True}, "versions": {1: version(SCRIPT, function, **options)}}


async def result(http, url, body):
    async with http.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["result"]


async def concurrently(http, url, count):
    """``count`` calls at once: idle workers are picked first, so they spread over the pool."""
    return await asyncio.gather(*(result(http, url, {"parameters": []}) for _ in range(count)))


async def test_with_preload_the_script_runs_once_in_the_pool_parent(gateway_factory, http,
                                                                   exchange_dir):
    loads = exchange_dir / "loads.txt"
    gw = await gateway_factory({"models": {"who": {
        **model("whoami", workers=3), "env": {"LOADS_FILE": str(loads)}}}})
    answers = await concurrently(http, gw.model_url("who"), 30)
    assert len({a["pid"] for a in answers}) == 3
    assert {a["loads"] for a in answers} == {1}
    assert len(loads.read_text().split()) == 1  # one run, before the fork


async def test_without_preload_the_script_runs_once_in_each_worker(gateway_factory, http,
                                                                  exchange_dir):
    loads = exchange_dir / "loads.txt"
    gw = await gateway_factory({"models": {"who": {
        **model("whoami", workers=2, preload=False), "env": {"LOADS_FILE": str(loads)}}}})
    answers = await concurrently(http, gw.model_url("who"), 20)
    pids = {a["pid"] for a in answers}
    assert len(pids) == 2
    assert sorted(map(int, loads.read_text().split())) == sorted(pids)
    # globals persist between calls inside one warm process
    assert max(a["calls"] for a in answers) > 1


async def test_the_model_env_reaches_user_code_and_the_gateways_does_not(gateway_factory,
                                                                         http):
    gw = await gateway_factory(
        {"models": {"env": {**model("environment"), "env": {"THRESHOLD": "0.5"}}}},
        env={"GATEWAY_SECRET": "do-not-leak"})
    url = gw.model_url("env")
    assert await result(http, url, {"parameters": ["THRESHOLD"]}) == "0.5"
    assert await result(http, url, {"parameters": ["GATEWAY_SECRET"]}) is None
    assert await result(http, url, {"parameters": ["PATH"]})  # what Python needs is there


async def test_the_working_directory_is_the_snapshot_of_the_scripts_directory(
        gateway_factory, http):
    """By default a version's project is its script's directory; it runs in its snapshot."""
    gw = await gateway_factory({"models": {"who": model("whoami")}})
    answer = await result(http, gw.model_url("who"), {"parameters": []})
    cwd = Path(answer["cwd"])
    assert cwd.is_relative_to(gw.config_path.parent / ".modelgate" / "store" / "snapshots")
    assert (cwd / "py_calls.py").read_bytes() == (TEST_MODELS / "py_calls.py").read_bytes()


def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def test_preloaded_memory_is_shared_copy_on_write(gateway_factory, http):
    gw = await gateway_factory({"models": {"big": {"access": {"public": True}, "versions": {
        1: version(TEST_MODELS / "py_memory.py", "pid", workers=4)}}}})
    pids = set(await concurrently(http, gw.model_url("big"), 40))
    assert len(pids) == 4
    one_rss = rss_kb(next(iter(pids)))
    total_pss = sum(pss_kb(pid) for pid in pids)
    assert one_rss > 300 * 1024  # each worker maps the whole 300 MB model
    assert total_pss < 2 * one_rss, (total_pss, one_rss)  # 4 workers cost well under 4x


async def test_2000_concurrent_calls_each_get_their_own_answer(gateway_factory, http):
    gw = await gateway_factory({"models": {"inc": model("plus_one", workers=2)}})
    url = gw.model_url("inc")
    limit = asyncio.Semaphore(200)

    async def one(i):
        async with limit:
            return await result(http, url, {"parameters": [i]})

    answers = await asyncio.gather(*(one(i) for i in range(2000)))
    assert answers == [i + 1 for i in range(2000)]


async def test_an_exception_in_user_code_leaves_the_worker_serving(gateway_factory, http):
    """The failing version's own single worker answers before and after its exceptions."""
    gw = await gateway_factory({"models": {"fail": model("fail_or_pid", workers=1)}})
    url = gw.model_url("fail")
    before = await result(http, url, {"parameters": []})
    for _ in range(3):
        async with http.post(url, json={"data": {"crash": True}}) as resp:
            assert resp.status == 500
            assert (await resp.json())["error"]["type"] == "model_error"
    assert await result(http, url, {"parameters": []}) == before  # the same process


async def test_a_worker_that_exits_mid_call_is_502_and_is_replaced(gateway_factory, http):
    gw = await gateway_factory({"models": {"crash": {"access": {"public": True}, "versions": {
        1: version(SCRIPT, "exit_now", workers=1), 2: version(SCRIPT, "whoami", workers=1)}}}})
    async with http.post(gw.model_url("crash", 1), json={"parameters": []}) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["type"] == "worker_lost"
    # the pool parent restarts the worker; the other version never noticed
    assert (await result(http, gw.model_url("crash", 2), {"parameters": []}))["loads"] == 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        async with http.get(f"{gw.url}/readyz") as resp:
            if (await resp.json())["versions"]["crash/1"]["ready"]:
                break
        assert loop.time() < deadline, "the crashed worker was not replaced"
        await asyncio.sleep(0.1)
    async with http.post(gw.model_url("crash", 1), json={"parameters": []}) as resp:
        assert resp.status == 502  # the replacement serves (and exits) again


def sleeps(pid):
    """How often the process's main thread has blocked (and been woken) so far."""
    status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


async def test_a_worker_answering_one_call_after_another_stays_awake_while_asked(
        gateway_factory, http):
    admin = "busy-poll-admin-token"
    gw = await gateway_factory({
        "gateway": {"busy_poll_us": 10000},
        "tokens": {"ops": {"sha256": token_sha256(admin), "admin": True}},
        "models": {"p": model("pid", workers=1)}})
    url = gw.model_url("p")

    async def sleeps_over(calls):
        pid = await result(http, url, {"parameters": []})
        before = sleeps(pid)
        for _ in range(calls):
            assert await result(http, url, {"parameters": []}) == pid
        return sleeps(pid) - before

    # 10 ms awake after each answer: the next call (a round trip of the test's own client)
    # finds the worker polling, so it hardly ever sleeps
    assert await sleeps_over(100) < 30
    gw.config_path.write_text(gw.config_path.read_text().replace("busy_poll_us: 10000",
                                                                 "busy_poll_us: 0"))
    async with http.post(f"{gw.url}/admin/reload", json={},
                         headers={"Authorization": f"Bearer {admin}"}) as resp:
        assert resp.status == 200, await resp.text()
    assert await sleeps_over(100) >= 90  # turned off by the reload: it sleeps for each call
