"""Worker logs (SPEC §7): every line a worker writes names its model, version and request,
whatever wrote it (a model error, Python's print, logging and warnings, R's console and
warnings), and the gateway keeps the last lines of each version for
``GET /admin/models/{m}/logs``, on a real gateway with real Python and R workers."""

import asyncio
import hashlib

import pytest

from conftest import TEST_MODELS, require, version

KEPT = 300  # gateway.worker_log_lines
ADMIN = "ops-worker-logs-token"
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    from conftest import start_gateway

    require("rpy2", "MODELGATE_TEST_SKIP_R")
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    gateway = await start_gateway(tmp_path_factory.mktemp("logs"), {
        "gateway": {"worker_log_lines": KEPT},
        "tokens": {"ops": {"sha256": digest, "admin": True}},
        "models": {
            "chatty": {"access": {"public": True}, "versions": {
                1: version(TEST_MODELS / "chatty.py", "talk"),
                2: version(TEST_MODELS / "chatty.py", "flood")}},
            "rchatty": {"access": {"public": True}, "versions": {
                1: version(TEST_MODELS / "r_chatty.R", "talkR")}},
        }})
    yield gateway
    await gateway.stop()


async def logs(http, gw, model, **query):
    async with http.get(f"{gw.url}/admin/models/{model}/logs",
                        params={k: str(v) for k, v in query.items()}, headers=ADMIN_H) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def lines_of(http, gw, model, rid, want, **query):
    """The kept lines of request ``rid``, once ``want`` events are among them."""
    for _ in range(200):
        page = await logs(http, gw, model, **query)
        mine = [e["line"] for e in page["lines"] if e["line"].get("request_id") == rid]
        if want <= {line["event"] for line in mine}:
            return mine, page
        await asyncio.sleep(0.05)
    raise AssertionError(f"{want} not logged for {rid}: {page}")


async def test_every_python_worker_line_names_model_version_and_request(gw, http):
    async with http.post(gw.model_url("chatty", 1), json={"parameters": ["fail"]},
                         headers={"X-Request-Id": "rid-chatty-1"}) as resp:
        assert resp.status == 500
    mine, page = await lines_of(http, gw, "chatty", "rid-chatty-1",
                                {"print", "log", "warning", "model_error"}, version=1)
    texts = {(line["event"], line.get("text") or line.get("message")) for line in mine}
    assert ("print", "printed fail") in texts and ("print", "to stderr fail") in texts
    assert ("log", "logged fail") in texts
    assert any(e == "warning" and "warned fail" in (t or "") for e, t in texts)
    for line in mine:
        assert (line["model"], line["version"]) == ("chatty", 1), line
    # a line written at load time names the version, and no request
    every = [e["line"] for e in page["lines"]]
    loading = [x for x in every if x.get("text") == "loading chatty"]
    assert loading and loading[0]["request_id"] is None and loading[0]["version"] == 1
    assert all({"model", "version", "request_id"} <= set(x) for x in every), every
    # the gateway's own output still carries them
    assert b"rid-chatty-1" in b"".join(gw.raw_output)


async def test_r_messages_and_warnings_name_the_request(gw, http):
    async with http.post(gw.model_url("rchatty", 1), json={"parameters": ["hi"]},
                         headers={"X-Request-Id": "rid-r-1"}) as resp:
        assert resp.status == 200, await resp.text()
    mine, _ = await lines_of(http, gw, "rchatty", "rid-r-1", {"r_output", "r_warning"})
    assert any("r message hi" in (x.get("text") or "") for x in mine), mine
    assert any("r cat hi" in (x.get("text") or "") for x in mine), mine
    assert any("r warning hi" in (x.get("message") or "") for x in mine), mine
    assert all((x["model"], x["version"]) == ("rchatty", 1) for x in mine)


async def test_the_ring_is_bounded_and_since_gives_only_what_is_new(gw, http):
    before = (await logs(http, gw, "chatty", version=2))["next"]
    n = KEPT + 200
    async with http.post(gw.model_url("chatty", 2), json={"parameters": [n]},
                         headers={"X-Request-Id": "rid-flood"}) as resp:
        assert resp.status == 200
    await lines_of(http, gw, "chatty", "rid-flood", {"print"}, version=2)

    async def last_line_kept():
        page = await logs(http, gw, "chatty", version=2, since=before)
        return page["lines"] and page["lines"][-1]["line"].get("text") == f"line {n - 1}"

    for _ in range(200):
        if await last_line_kept():
            break
        await asyncio.sleep(0.05)
    page = await logs(http, gw, "chatty", version=2, since=0, limit=1000)
    kept = [e for e in page["lines"] if e["version"] == 2]
    assert len(kept) == KEPT  # bounded: the oldest lines are gone
    assert kept[-1]["line"]["text"] == f"line {n - 1}"
    # version 1's ring is its own: the flood did not push its lines out
    assert (await logs(http, gw, "chatty", version=1))["lines"]
    # since: only what came after
    nothing = await logs(http, gw, "chatty", since=page["next"])
    assert nothing["lines"] == [] and nothing["next"] == page["next"]
    async with http.post(gw.model_url("chatty", 1), json={"parameters": ["again"]},
                         headers={"X-Request-Id": "rid-again"}) as resp:
        assert resp.status == 200
    _, newer = await lines_of(http, gw, "chatty", "rid-again", {"print"},
                              since=page["next"])
    assert all(e["seq"] > page["next"] for e in newer["lines"])
    async with http.get(f"{gw.url}/admin/models/nope/logs", headers=ADMIN_H) as resp:
        assert resp.status == 404
    async with http.get(f"{gw.url}/admin/models/chatty/logs") as resp:
        assert resp.status == 401
