"""Versions, promotion, rollback and hot reload (SPEC §6, §8) on a real gateway: the CLI edits
the file and the gateway reloads it while clients keep calling, with no failed call; what
cannot be served is refused and the old config keeps serving; everything is audited."""

import asyncio
import getpass
import hashlib
import itertools
import os
import signal
import sys
from contextlib import asynccontextmanager

import aiohttp
import msgspec
import pytest

from conftest import ROOT, TEST_MODELS, token_sha256, version
from gateway import config
from gateway.serving import reload

SCRIPT = TEST_MODELS / "py_calls.py"
ADMIN_TOKEN = "ops-secret-token-for-tests"
USER_TOKEN = "ci-secret-token-for-tests"

ADVANCED = f"""\
# production goes to the promoted version (this comment must survive)
models:
  m:
    access: {{public: true}}
    routing: advanced   # promote/rollback change `promoted`
    promoted: 1
    versions:
      1: {{language: python, script: {SCRIPT}, function: whoami, workers: 1}}
      2: {{language: python, script: {SCRIPT}, function: whoami, workers: 1}}
"""




async def cli(*args, env=None):
    """``python -m gateway.cli ARGS``: exit code, stdout, stderr (bounded in time)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *map(str, args), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def call(http, url, body=None):
    """Status and JSON body of one call."""
    async with http.post(url, json=body or {"parameters": []}) as resp:
        return resp.status, await resp.json()


async def served(http, gw, label="prod"):
    """The version number and worker pid that answer ``label``."""
    status, answer = await call(http, gw.model_url("m", label))
    assert status == 200, answer
    return answer["release"]["model_version_number"], answer["result"]["pid"]


@asynccontextmanager
async def load(http, url, clients=8, limit_s=30.0):
    """``clients`` concurrent callers looping on ``url`` until the block ends; yields the list
    of (status, version number) they saw, in order. A connection error counts as status 0."""
    seen = []
    stop = asyncio.Event()
    deadline = asyncio.get_running_loop().time() + limit_s

    async def client():
        while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
            try:
                status, answer = await call(http, url)
                seen.append((status, answer.get("release", {}).get("model_version_number")))
            except aiohttp.ClientError as exc:
                seen.append((0, repr(exc)))

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    try:
        await until(lambda: len(seen) >= 20, "the load did not start")
        yield seen
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def until(condition, message, timeout=15.0):
    """Poll ``condition`` (a function) until it holds, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, message
        await asyncio.sleep(0.02)


def audit_lines(gw):
    path = gw.config_path.parent / "audit.jsonl"
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def actions(gw):
    return [line["action"] for line in audit_lines(gw)]


async def reloaded_or_failed(gw, count, timeout=15.0):
    """Wait for the ``count``-th reload or reload_failed line of the audit log."""
    def done():
        return len([a for a in actions(gw) if a.startswith("reload")]) >= count

    await until(done, "the gateway did not reload", timeout)
    return audit_lines(gw)[-1]


# ------------------------------------------------------------------ the CLI under load

async def test_promote_and_rollback_under_load_fail_no_call_and_keep_workers(
        gateway_factory, http):
    gw = await gateway_factory(ADVANCED)
    pids = {n: (await served(http, gw, n))[1] for n in (1, 2)}
    async with load(http, gw.model_url("m", "prod")) as seen:
        code, out, err = await cli("promote", "m", 2, "-c", gw.config_path)
        assert code == 0, err
        assert "production v1 -> v2" in out and "reloaded" in out
        assert (await served(http, gw))[0] == 2  # the CLI returns once the switch is made
        await until(lambda: seen[-1][1] == 2, "the load never saw version 2")
        code, out, err = await cli("rollback", "m", "-c", gw.config_path)
        assert code == 0, err
        assert "production v2 -> v1" in out
        assert (await served(http, gw))[0] == 1
        await until(lambda: seen[-1][1] == 1, "the load never saw version 1 again")
    failed = [s for s in seen if s[0] != 200]
    assert not failed, failed[:5]
    numbers = [n for _, n in seen]
    switches = sum(1 for a, b in itertools.pairwise(numbers) if a != b)
    assert set(numbers) == {1, 2} and switches >= 2
    # promotion only moves traffic: both pools kept their warm workers
    assert {n: (await served(http, gw, n))[1] for n in (1, 2)} == pids
    text = gw.config_path.read_text()
    assert "(this comment must survive)" in text and "# promote/rollback change" in text
    assert "promoted: 1" in text
    lines = audit_lines(gw)
    assert [line["action"] for line in lines] == [
        "start", "promote", "reload", "rollback", "reload"]
    promote, rollback = lines[1], lines[3]
    assert (promote["actor"], promote["model"], promote["before"], promote["after"]) == (
        getpass.getuser(), "m", 1, 2)
    assert (rollback["before"], rollback["after"]) == (2, 1)
    assert lines[2]["actor"] == "gateway" and "m v1 -> v2" in lines[2]["details"]
    # the reload that moved production says so in the structured fields too
    assert [(line["model"], line["before"], line["after"]) for line in (lines[2], lines[4])] \
        == [("m", 1, 2), ("m", 2, 1)]


async def test_publish_then_unpublish_under_load_moves_basic_production(gateway_factory,
                                                                        http):
    gw = await gateway_factory({"models": {"m": {"access": {"public": True}, "versions": {
        1: version(SCRIPT, "whoami", workers=1)}}}})
    async with load(http, gw.model_url("m", "prod")) as seen:
        code, out, err = await cli("publish", "m", "--script", SCRIPT, "--function", "whoami",
                                   "-c", gw.config_path)
        assert code == 0, err
        assert "publish v2 (production v1 -> v2)" in out and "started: m v2" in out
        assert (await served(http, gw))[0] == 2
        code, out, err = await cli("unpublish", "m", 1, "-c", gw.config_path)
        assert code == 0, err
        assert "stopped: m v1" in out
    assert not [s for s in seen if s[0] != 200]
    assert {n for _, n in seen} == {1, 2}
    status, answer = await call(http, gw.model_url("m", 1))
    assert status == 404 and "unpublished" in answer["error"]["message"]
    async with http.get(f"{gw.url}/readyz") as resp:
        assert set((await resp.json())["versions"]) == {"m/2"}  # v1's pool was stopped
    assert actions(gw)[1:] == ["publish", "reload", "unpublish", "reload"]
    publish = audit_lines(gw)[1]
    assert (publish["version"], publish["before"], publish["after"]) == (2, 1, 2)


async def test_invalid_actions_are_refused_and_leave_the_file_unchanged(tmp_path):
    path = tmp_path / "deployment.yaml"
    *head, last = ADVANCED.splitlines()
    path.write_text("\n".join([*head, last.replace("}", ", unpublished: true}")]) + "\n")
    original = path.read_bytes()
    cases = [
        (("promote", "m", 2), "version 2 of `m` is unpublished"),
        (("promote", "nope", 1), "no model named `nope`"),
        (("promote", "m", 9), "has no version 9"),
        (("unpublish", "m", 1), "promoted version of `m`"),
        (("rollback", "m"), "no earlier promotion of `m`"),
        (("publish", "m", "--script", SCRIPT, "--function", "not_there"),
         "not_there is not defined"),
    ]
    for args, message in cases:
        code, _, err = await cli(*args, "-c", path)
        assert code == 1, (args, err)
        assert message in err, (args, err)
        assert path.read_bytes() == original, args
    assert not (tmp_path / "audit.jsonl").exists()  # nothing was done, nothing audited


# ------------------------------------------------------------------ reloads that fail

async def test_a_broken_file_sent_by_sighup_keeps_the_old_config_serving(gateway_factory,
                                                                         http):
    gw = await gateway_factory(ADVANCED)
    good = gw.config_path.read_text()
    gw.config_path.write_text(good.replace("promoted: 1", "promoted: [1"))
    gw.process.send_signal(signal.SIGHUP)
    failed = await reloaded_or_failed(gw, 1)
    assert failed["action"] == "reload_failed" and failed["result"] == "failed"
    assert "not valid YAML" in failed["details"]
    assert (await served(http, gw))[0] == 1
    await until(lambda: gw.events("reload_failed"), "the failed reload was not logged")
    # a version that cannot load: the new pool fails, nothing moves
    gw.config_path.write_text(good)
    code, _, err = await cli("publish", "m", "--script", TEST_MODELS / "faults_broken.py",
                             "--function", "predict", "-c", gw.config_path)
    assert code == 1 and "kept serving its old config" in err, err
    assert "this_module_does_not_exist" in err
    assert audit_lines(gw)[-1]["action"] == "reload_failed"
    status, answer = await call(http, gw.model_url("m", 3))
    assert status == 404, answer
    assert (await served(http, gw))[0] == 1


async def test_an_unexpected_error_in_a_reload_is_audited_and_reported(tmp_path):
    path = tmp_path / "deployment.yaml"
    path.write_text(ADVANCED)
    running = config.load(path)

    class Crashing:  # a Service whose reload has a bug
        deployment = running

        async def reload(self, deployment):
            raise RuntimeError("boom")

    with pytest.raises(reload.ReloadFailed) as failed:
        await reload.Reloader(Crashing()).reload("ops")
    assert "unexpected error and the old config keeps serving: RuntimeError: boom" in str(
        failed.value)
    (line,) = [msgspec.json.decode(raw) for raw in (tmp_path / "audit.jsonl").read_bytes()
               .splitlines()]
    assert (line["action"], line["result"], line["actor"]) == ("reload_failed", "failed", "ops")
    assert "RuntimeError: boom" in line["details"]
    assert line["config_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # CLI's match


async def test_settings_read_at_start_keep_their_values_and_need_a_restart(gateway_factory,
                                                                           http):
    gw = await gateway_factory({
        "gateway": {"max_body_bytes": 1000, "request_timeout_s": 30},
        "tokens": {"ops": {"sha256": token_sha256(ADMIN_TOKEN), "admin": True}},
        "models": {"m": {"access": {"public": True}, "versions": {
            1: version(SCRIPT, "whoami", workers=1)}}}})
    text = gw.config_path.read_text()
    gw.config_path.write_text(text.replace("max_body_bytes: 1000", "max_body_bytes: 100000")
                              .replace("request_timeout_s: 30", "request_timeout_s: 20"))
    async with http.post(f"{gw.url}/admin/reload", json={},
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        report = await resp.json()
        assert resp.status == 200, report
    # not gateway.listen: --listen overrides it, and the file's value did not change
    assert report["needs_restart"] == ["gateway.max_body_bytes"]
    assert audit_lines(gw)[-1]["details"].endswith("needs a restart: gateway.max_body_bytes")
    await until(lambda: gw.events("reload_needs_restart"), "the gateway did not warn")
    status, answer = await call(http, gw.model_url("m"), {"parameters": ["x" * 5000]})
    assert status == 413 and "the limit is 1000" in answer["error"]["message"], answer
    code, out, err = await cli("reload", gw.config_path)  # said again until a restart
    assert code == 0 and "needs a restart: gateway.max_body_bytes" in out, err


async def test_a_new_default_timeout_reaches_the_pools_kept_warm(gateway_factory, http):
    faults = TEST_MODELS / "faults.py"
    gw = await gateway_factory({
        "gateway": {"request_timeout_s": 30},
        "tokens": {"ops": {"sha256": token_sha256(ADMIN_TOKEN), "admin": True}},
        "models": {"m": {"access": {"public": True}, "versions": {
            1: version(faults, "slow", workers=1), 2: version(faults, "whoami", workers=1)}}}})
    status, answer = await call(http, gw.model_url("m", 2))
    assert status == 200
    pid = answer["result"]
    text = gw.config_path.read_text()
    gw.config_path.write_text(text.replace("request_timeout_s: 30", "request_timeout_s: 0.5"))
    async with http.post(f"{gw.url}/admin/reload", json={},
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        report = await resp.json()
        assert resp.status == 200, report
    assert report["started"] == [] and report["needs_restart"] == []  # every pool kept warm
    status, answer = await call(http, gw.model_url("m", 2))
    assert (status, answer["result"]) == (200, pid)
    status, answer = await call(http, gw.model_url("m", 1), {"parameters": [3]})
    assert status == 504 and "within 0.5 s" in answer["error"]["message"], answer


async def test_an_env_change_restarts_only_that_models_pools(gateway_factory, http):
    gw = await gateway_factory({"models": {
        "a": {"access": {"public": True}, "env": {"COLOUR": "red"}, "versions": {
            1: version(SCRIPT, "whoami", workers=1), 2: version(SCRIPT, "environment")}},
        "b": {"access": {"public": True}, "versions": {1: version(SCRIPT, "whoami")}}}})

    async def state():
        _, a1 = await call(http, gw.model_url("a", 1))
        _, a2 = await call(http, gw.model_url("a", 2), {"parameters": ["COLOUR"]})
        _, b1 = await call(http, gw.model_url("b", 1))
        return (a1["result"]["pid"], a1["release"]["model_version"], a2["result"],
                b1["result"]["pid"], b1["release"]["model_version"])

    before = await state()
    assert before[2] == "red"
    gw.config_path.write_text(gw.config_path.read_text().replace("red", "blue"))
    code, out, err = await cli("reload", gw.config_path)
    assert code == 0, err
    assert "started: a v1, a v2" in out and "kept: b v1" in out and "stopped: a v1, a v2" in out
    after = await state()
    assert after[2] == "blue"
    assert after[0] != before[0] and after[1] != before[1]  # a: new workers, new version id
    assert after[3:] == before[3:]  # b: the same warm worker and version id


# ------------------------------------------------------------------ the admin API

async def test_the_admin_api_answers_admin_tokens_only(gateway_factory, http):
    gw = await gateway_factory({
        "tokens": {"ops": {"sha256": token_sha256(ADMIN_TOKEN), "admin": True},
                   "ci": {"sha256": token_sha256(USER_TOKEN)}},
        "models": {"m": {"access": {"public": False, "tokens": ["ci", "ops"]},
                         "routing": "advanced", "promoted": 1, "versions": {
                             1: version(SCRIPT, "whoami"), 2: version(SCRIPT, "whoami")}}}})
    admin, user = ({"Authorization": f"Bearer {t}"} for t in (ADMIN_TOKEN, USER_TOKEN))
    for method, path in (("POST", "/admin/reload"), ("GET", "/admin/audit")):
        for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 401),
                                (user, 403)):
            async with http.request(method, gw.url + path, headers=headers) as resp:
                body = await resp.json()
                assert resp.status == status, (path, headers, body)
                assert body["error"]["type"] == ("unauthorized" if status == 401 else
                                                 "forbidden")
                assert body["error"]["request_id"]
                if status == 401:
                    assert "Bearer" in resp.headers["WWW-Authenticate"]
    async with http.post(f"{gw.url}/admin/reload", json={}, headers=admin) as resp:
        assert resp.status == 200
        assert (await resp.json())["kept"] == ["m v1", "m v2"]
    code, out, err = await cli("promote", "m", 2, "-c", gw.config_path, "--url", gw.url,
                               env={"MODELGATE_TOKEN": ADMIN_TOKEN})
    assert code == 0, err
    assert "production: m v2" in out
    async with http.get(f"{gw.url}/admin/audit?model=m", headers=admin) as resp:
        lines = (await resp.json())["lines"]
    # the model's history: the CLI's promotion, then the reload (by the admin token) that moved it
    assert [(line["action"], line["before"], line["after"]) for line in lines] == [
        ("promote", 1, 2), ("reload", 1, 2)]
    async with http.get(f"{gw.url}/admin/audit?action=reload&limit=1",
                        headers=admin) as resp:
        (last,) = (await resp.json())["lines"]
    assert last["actor"] == "ops" and "m v1 -> v2" in last["details"]
    for limit in ("zero", "²", "0", "1001", "9" * 5000):  # "²".isdigit(), but int() refuses it
        async with http.get(f"{gw.url}/admin/audit", params={"limit": limit},
                            headers=admin) as resp:
            error = (await resp.json())["error"]
            assert resp.status == 400 and error["type"] == "bad_request", (limit, error)
            assert "limit must be a whole number from 1 to 1000" in error["message"]
    gw.config_path.write_text(gw.config_path.read_text().replace("function: whoami",
                                                                "function: 12"))
    async with http.post(f"{gw.url}/admin/reload", json={}, headers=admin) as resp:
        error = (await resp.json())["error"]
        assert resp.status == 400 and error["type"] == "bad_config", error
        assert "models.m.versions.1.function" in error["message"]
    assert actions(gw)[-1] == "reload_failed"
    async with http.post(gw.model_url("m", "prod"), json={"parameters": []},
                         headers=user) as resp:
        assert resp.status == 200
        assert (await resp.json())["release"]["model_version_number"] == 2
    await gw.stop()
    everything = b"".join(gw.raw_output) + (gw.config_path.parent / "audit.jsonl").read_bytes()
    for token in (ADMIN_TOKEN, USER_TOKEN):
        assert token.encode() not in everything


async def test_start_and_stop_are_audited_and_the_pid_file_lives_while_serving(
        gateway_factory):
    gw = await gateway_factory(ADVANCED)
    pid_file = gw.config_path.parent / "deployment.yaml.pid"
    assert int(pid_file.read_text()) == gw.process.pid
    assert await gw.stop() == 0
    assert not pid_file.exists()
    lines = audit_lines(gw)
    assert [(line["action"], line["actor"]) for line in lines] == [
        ("start", "gateway"), ("stop", "gateway")]
    served = hashlib.sha256(gw.config_path.read_bytes()).hexdigest()
    assert [line["config_sha256"] for line in lines] == [served, served]
    code, out, _ = await cli("promote", "m", 2, "-c", gw.config_path)
    assert code == 0 and "no gateway is serving" in out


async def test_a_second_serve_of_the_same_file_is_refused_and_leaves_the_pid_file(
        gateway_factory):
    gw = await gateway_factory(ADVANCED)
    pid_file = gw.config_path.parent / "deployment.yaml.pid"
    port = gw.url.rpartition(":")[2]  # the same port: without the check, it fails to bind
    code, _, err = await cli("serve", gw.config_path, "--listen", f"127.0.0.1:{port}")
    assert code == 1
    assert f"{gw.config_path} is already served by pid {gw.process.pid}; stop it first" in err
    assert int(pid_file.read_text()) == gw.process.pid
    code, out, err = await cli("promote", "m", 2, "-c", gw.config_path)
    assert code == 0 and f"gateway (pid {gw.process.pid}) reloaded" in out, err
