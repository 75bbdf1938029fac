"""Faults injected for real (SPEC §4, §7): killed workers and pool parents, timeouts, a script
that cannot load, overload. Every call gets an answer; nothing hangs; the pool comes back."""

import asyncio
import os
import signal

import yaml

from conftest import TEST_MODELS, eventually, metric, version

SCRIPT = TEST_MODELS / "faults.py"


def model(function, **options):
    return {"access": {"public": True}, "versions": {1: version(SCRIPT, function, **options)}}


async def until_ready(http, gw, key, timeout=20.0):
    async def ready():
        async with http.get(f"{gw.url}/readyz") as resp:
            state = (await resp.json())["versions"][key]
        return state["ready"] and state["workers_ready"] == state["workers"]

    await eventually(ready, f"{key} came back with all its workers", timeout)


async def pids_of(http, url, count=40):
    async def one():
        async with http.post(url, json={"parameters": [0.05]}) as resp:
            return (await resp.json())["result"]

    return set(await asyncio.gather(*(one() for _ in range(count))))


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def ran(calls):
    return calls.read_text().split() if calls.exists() else []


async def load(http, url, stop, answers):
    """One client: calls in a loop until ``stop`` is set, noting each status and error."""
    while not stop.is_set():
        async with http.post(url, json={"parameters": [0.02]}) as resp:
            body = await resp.json()
            answers.append((resp.status, body.get("error", {}).get("message", "")))


SLOTS = 2  # the most calls a worker may hold: what a killed worker can take with it


async def kill_under_load(http, gw, kill, restarts):
    """Eight clients call a two-worker pool; ``kill(pids)`` kills and returns the workers it
    took down; the gateway must notice (the ``restarts`` counter of /metrics moves), fail only
    the calls those workers held, and serve on with new workers."""
    url = gw.model_url("m")
    pids = await pids_of(http, url)
    assert len(pids) == 2
    stop, answers = asyncio.Event(), []
    clients = [asyncio.create_task(load(http, url, stop, answers)) for _ in range(8)]

    def served():
        return sum(status == 200 for status, _ in answers)

    def answered(count):
        async def check():
            assert all(not c.done() for c in clients), [c.exception() for c in clients
                                                        if c.done()]
            return served() >= count
        return check

    await eventually(answered(20), "calls under load were served")
    killed = kill(pids)

    async def noticed():
        return await metric(http, gw, restarts, model="m", version="1") >= 1

    await eventually(noticed, f"the gateway counted the kill in {restarts}")
    await until_ready(http, gw, "m/1")
    await eventually(answered(served() + 20), "calls were served after the kill")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*clients), 30)  # every call was answered
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 502}, set(statuses)
    lost = [message for status, message in answers if status == 502]
    # only the calls the killed workers held failed: each names one of them, and no more
    # than they could hold
    assert all(any(f"(pid {pid})" in m for pid in killed) for m in lost), lost
    assert len(lost) <= SLOTS * len(killed), lost
    assert statuses.count(200) >= 40
    serving = await pids_of(http, url)
    assert len(serving) == 2 and not serving & killed  # new workers took the killed ones' place
    statuses_after = []
    await load_once(http, url, statuses_after, 40)
    assert statuses_after == [200] * 40


async def load_once(http, url, statuses, count):
    async def one():
        async with http.post(url, json={"parameters": [0.01]}) as resp:
            statuses.append(resp.status)

    await asyncio.gather(*(one() for _ in range(count)))


async def test_a_killed_worker_fails_only_its_calls_and_is_replaced(gateway_factory, http):
    gw = await gateway_factory({"models": {"m": model("slow", workers=2, slots=SLOTS)}})

    def kill_one(pids):
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        return {victim}

    await kill_under_load(http, gw, kill_one, "modelgate_worker_restarts_total")


async def test_a_killed_pool_parent_is_restarted_with_its_workers(gateway_factory, http):
    gw = await gateway_factory({"models": {"m": model("slow", workers=2, slots=SLOTS)}})

    def kill_parent(pids):
        (parent,) = {parent_of(pid) for pid in pids}
        os.kill(parent, signal.SIGKILL)
        return pids  # its workers die with it

    await kill_under_load(http, gw, kill_parent, "modelgate_pool_restarts_total")
    assert gw.process.returncode is None  # the gateway lived through it


async def test_a_call_past_its_timeout_is_504_and_the_worker_is_replaced(gateway_factory, http,
                                                                       exchange_dir):
    calls = exchange_dir / "calls.txt"
    gw = await gateway_factory({"models": {"m": {
        **model("slow", workers=1, timeout_s=1), "env": {"CALLS_FILE": str(calls)}}}})
    url = gw.model_url("m")
    async with http.post(url, json={"parameters": [0]}) as resp:
        first_pid = (await resp.json())["result"]
    stuck = asyncio.create_task(http.post(url, json={"parameters": [30, "stuck"]}))

    async def running():
        return "stuck" in ran(calls)

    await eventually(running, "the stuck call reached the worker")
    queued = asyncio.create_task(http.post(url, json={"parameters": [0, "queued"]}))
    # answered well before the 30 s the call wanted
    stuck_resp, queued_resp = await asyncio.wait_for(asyncio.gather(stuck, queued), 20)
    assert stuck_resp.status == 504
    assert (await stuck_resp.json())["error"]["type"] == "timeout"
    # the call queued behind it on the worker was lost with it, or timed out: never a hang
    assert queued_resp.status in (502, 504)
    await until_ready(http, gw, "m/1")
    async with http.post(url, json={"parameters": [0]}) as resp:
        assert resp.status == 200
        assert (await resp.json())["result"] != first_pid  # a new worker


async def test_a_call_that_waited_in_the_queue_past_its_timeout_is_never_run(
        gateway_factory, http, exchange_dir):
    """The only worker (one slot) is held by a call until the test releases it; calls behind
    it wait in the gateway's queue past their timeout: each is a 504, and none ever runs, not
    even once the worker is free again. The held call started under a 60 s default timeout,
    then a reload lowers the default to 1 s for the calls that come after (the pool is kept)."""
    calls, release = exchange_dir / "calls.txt", exchange_dir / "release"
    config = {"gateway": {"request_timeout_s": 60}, "models": {"m": {
        **model("held", workers=1, slots=1), "env": {"CALLS_FILE": str(calls)}}}}
    gw = await gateway_factory(config)
    url = gw.model_url("m")
    busy = asyncio.create_task(http.post(url, json={"parameters": [str(release), "busy"]}))

    async def busy_running():
        return "busy" in ran(calls)

    await eventually(busy_running, "the held call reached the worker")
    config["gateway"]["request_timeout_s"] = 1
    gw.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    gw.process.send_signal(signal.SIGHUP)

    async def reloaded():
        assert not gw.events("reload_failed"), gw.events("reload_failed")
        return bool(gw.events("reloaded"))

    await eventually(reloaded, "the reload")
    assert gw.events("reloaded")[0]["kept"] == ["m v1"]  # the same worker, still held
    waiting = [asyncio.create_task(http.post(url, json={"parameters": [0, f"w{i}"]}))
               for i in range(3)]
    for response in await asyncio.wait_for(asyncio.gather(*waiting), 20):
        assert response.status == 504
        error = (await response.json())["error"]
        assert error["type"] == "timeout" and "all workers were busy" in error["message"]
    assert not busy.done()  # the worker was busy all along
    release.touch()
    assert (await asyncio.wait_for(busy, 20)).status == 200
    async with http.post(url, json={"parameters": [0, "after"]}) as resp:
        assert resp.status == 200  # the free worker runs what it is sent now
    assert ran(calls) == ["busy", "after"]  # the calls that timed out in the queue never ran


async def test_a_version_that_cannot_load_is_not_ready_and_others_serve(gateway_factory, http):
    gw = await gateway_factory({"models": {
        "broken": {"access": {"public": True},
                   "versions": {1: version(TEST_MODELS / "faults_broken.py", "predict")}},
        "fine": model("whoami")}})
    async with http.get(f"{gw.url}/readyz") as resp:
        assert resp.status == 503
        state = (await resp.json())["versions"]
    assert "reason" not in state["broken/1"]  # anonymous: no load error (issue 15, M3)
    assert any("this_module_does_not_exist" in e.get("reason", "")
               for e in gw.events("load_failed"))
    assert state["fine/1"]["ready"]
    async with http.post(gw.model_url("broken"), json={"parameters": [1]}) as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["error"]["type"] == "unavailable"
    assert "this_module_does_not_exist" not in body["error"]["message"]
    async with http.post(gw.model_url("fine"), json={"parameters": []}) as resp:
        assert resp.status == 200


async def test_overload_answers_503_with_retry_after_and_nothing_hangs(gateway_factory, http):
    gw = await gateway_factory({"models": {"m": model("slow", workers=1, max_queue=5)}})
    with open(f"/proc/{gw.process.pid}/status") as f:
        rss_before = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))

    async def one():
        async with http.post(gw.model_url("m"), json={"parameters": [0.05]}) as resp:
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    answers = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(200))), 60)
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) > 100 and statuses.count(200) >= 5
    overloaded = [(r, b) for s, r, b in answers if s == 503]
    assert all(r == "1" and b["error"]["type"] == "overloaded" for r, b in overloaded)
    with open(f"/proc/{gw.process.pid}/status") as f:
        rss_after = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    assert rss_after < rss_before + 50 * 1024  # bounded: no per-call growth
