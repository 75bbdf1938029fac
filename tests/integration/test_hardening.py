"""Issue 15 (hardening) against the real gateway and real Python and R workers: small hostile
requests are refused before they cost anything, and none of them kills a worker."""

import asyncio
import time

import msgspec
import pytest

from conftest import (
    TEST_MODELS,
    free_port,
    make_keys,
    require,
    start_gateway,
    token_sha256,
    version,
)
from workers.wire import MAX_NESTING

PY = TEST_MODELS / "hostile.py"
R = TEST_MODELS / "hostile.R"


def public(script, function, **options):
    return {"access": {"public": True},
            "versions": {1: version(script, function, workers=1, **options)}}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    models = {"py-take": public(PY, "take"), "sum": public(PY, "take")}
    try:
        import rpy2  # noqa: F401

        models["r-take"] = public(R, "take")
    except ImportError:
        pass
    running = await start_gateway(tmp_path_factory.mktemp("hardening"), {"models": models})
    yield running
    await running.stop()


def nested_body(depth):
    return b'{"parameters": [' + b"[" * depth + b"]" * depth + b"]}"


async def post(http, url, body, **headers):
    async with http.post(url, data=body, headers={"Content-Type": "application/json",
                                                  **headers}) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("model", ["py-take", "r-take"])
async def test_deep_nesting_is_the_same_400_in_python_and_r_and_kills_no_worker(gw, http, model):
    if model == "r-take":
        require("rpy2", "MODELGATE_TEST_SKIP_R")
    url = gw.model_url(model)
    status, body = await post(http, url, b'{"parameters": [0]}')
    assert status == 200
    pid = body["result"]
    for _ in range(6):  # six such requests killed six R workers
        status, body = await post(http, url, nested_body(400))
        assert status == 400, body
        assert body["error"]["type"] == "bad_request"
        assert f"more than {MAX_NESTING} levels deep" in body["error"]["message"]
    status, body = await post(http, url, nested_body(MAX_NESTING - 3))
    assert (status, body["result"]) == (200, pid)  # the same worker, still serving


async def test_a_tiny_v2_request_describing_a_huge_empty_tensor_is_refused_at_once(gw, http):
    shape = [65536] + [1] * 30 + [0]
    one = {"name": "x", "shape": shape, "datatype": "BOOL", "data": []}
    for inputs in ([one], [{**one, "name": n} for n in "abcd"]):
        body = msgspec.json.encode({"inputs": inputs})
        assert len(body) < 700
        started = time.perf_counter()
        health = asyncio.ensure_future(http.get(gw.url + "/healthz"))
        async with http.post(gw.url + "/v2/models/sum/infer", data=body,
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            assert "more than a body of" in (await resp.json())["error"]
        assert time.perf_counter() - started < 1.0  # 1.9 s and 8.1 s before the fix
        async with await health as resp:
            assert resp.status == 200


async def test_a_version_number_of_5000_digits_is_a_short_404(gw, http):
    for url, call in ((gw.url + "/models/py-take/" + "9" * 5000 + "/model",
                       b'{"parameters": [1]}'),
                      (gw.url + "/v2/models/py-take/versions/" + "9" * 5000 + "/infer",
                       b'{"inputs": []}')):
        status, body = await post(http, url, call)
        assert status == 404, body
        assert len(str(body)) < 400


ASYNC = "/api/modelApis/async/v1"
TOKEN = "hardening-token-1"


def with_token(config, public):
    import hashlib

    return {**config, "tokens": {"ci": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}},
            "models": {"take": {"access": {"public": public, "tokens": [] if public else ["ci"]},
                                "versions": {1: version(PY, "take", workers=1)}}}}


async def test_async_predictions_kept_are_bounded_in_count_and_bytes(gateway_factory, http):
    gw = await gateway_factory(with_token({"gateway": {"async_max_stored": 2,
                                                       "async_max_bytes": 200}}, True))
    url = gw.url + ASYNC + "/take"
    for _ in range(2):
        status, _ = await post(http, url, b'{"parameters": [1]}')
        assert status == 202
    status, body = await post(http, url, b'{"parameters": [1]}')
    assert (status, body["error"]["type"]) == (503, "overloaded")
    assert "gateway.async_max_stored = 2" in body["error"]["message"]
    gw2 = await gateway_factory(with_token({"gateway": {"async_max_bytes": 100}}, True))
    status, body = await post(http, gw2.url + ASYNC + "/take",
                              b'{"parameters": ["' + b"x" * 100 + b'"]}')
    assert (status, body["error"]["type"]) == (503, "overloaded")
    assert "async_max_bytes" in body["error"]["message"]


async def test_a_result_submitted_while_public_is_hidden_once_the_model_is_restricted(
        gateway_factory, http):
    import signal

    import yaml

    gw = await gateway_factory(with_token({}, True))
    status, body = await post(http, gw.url + ASYNC + "/take", b'{"parameters": [1]}')
    assert status == 202
    result_url = gw.url + ASYNC + "/take/" + body["asyncPredictionId"]
    for _ in range(200):
        async with http.get(result_url) as resp:
            if (await resp.json())["status"] == "succeeded":
                break
        await asyncio.sleep(0.05)
    assert not any(body["asyncPredictionId"] in line for line in map(bytes.decode, gw.raw_output))
    gw.config_path.write_text(yaml.safe_dump(with_token({}, False)))
    gw.process.send_signal(signal.SIGHUP)
    for _ in range(200):
        if gw.events("reloaded") or gw.events("reload"):
            break
        await asyncio.sleep(0.05)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(200):  # until the reload is in place: the model then asks for a token
        async with http.get(result_url) as resp:
            if resp.status == 401:
                break
        await asyncio.sleep(0.05)
    async with http.get(result_url, headers=bearer) as resp:
        assert resp.status == 404, await resp.text()


ADMIN = "hardening-admin-2"


async def test_anonymous_callers_see_no_restricted_model_and_no_load_error(gateway_factory,
                                                                            http):

    gw = await gateway_factory({
        "tokens": {"ci": {"sha256": token_sha256(TOKEN)},
                   "root": {"sha256": token_sha256(ADMIN), "admin": True}},
        "models": {
            "alice-only": {"access": {"public": False, "tokens": ["ci"]}, "versions": {
                1: version(TEST_MODELS / "faults_broken.py", "predict", workers=1)}},
            "open": public(PY, "take")}})
    secret_bits = ("alice-only", "this_module_does_not_exist", "faults_broken")
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):  # anonymous, or not an admin
        async with http.get(gw.url + "/readyz", headers=headers) as resp:
            assert resp.status == 503
            text = await resp.text()
        assert "open/1" in text and not any(bit in text for bit in secret_bits), text
        async with http.get(gw.url + "/metrics", headers=headers) as resp:
            text = await resp.text()
        assert 'model="open"' in text and "alice-only" not in text
    status, body = await post(http, gw.model_url("alice-only"), b'{"parameters": [1]}',
                              Authorization=f"Bearer {TOKEN}")
    assert (status, body["error"]["type"]) == (503, "unavailable")
    assert not any(bit in body["error"]["message"] for bit in secret_bits[1:])
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with http.get(gw.url + "/readyz", headers=admin) as resp:
        assert "this_module_does_not_exist" in (await resp.json())["versions"][
            "alice-only/1"]["reason"]
    async with http.get(gw.url + "/metrics", headers=admin) as resp:
        assert 'model="alice-only"' in await resp.text()


async def test_cross_site_form_types_are_415_and_401_challenges_bearer_only(gateway_factory,
                                                                             http):
    import base64

    gw = await gateway_factory({
        "tokens": {"ci": {"sha256": token_sha256(TOKEN)},
                   "root": {"sha256": token_sha256(ADMIN), "admin": True}},
        "models": {"locked": {"access": {"public": False, "tokens": ["ci"]},
                              "versions": {1: version(PY, "take", workers=1)}}}})
    async with http.post(gw.model_url("locked"), json={"parameters": [1]}) as resp:
        assert resp.status == 401
        assert resp.headers.getall("WWW-Authenticate") == ['Bearer realm="modelgate"']
    basic = "Basic " + base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode()
    status, _ = await post(http, gw.model_url("locked"), b'{"parameters": [1]}',
                           Authorization=basic)
    assert status == 200  # Basic is still accepted when sent
    user = {"Authorization": f"Bearer {TOKEN}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    posts = [(gw.model_url("locked"), user, b'{"parameters": [1]}'),
             (gw.url + "/v2/models/locked/infer", user,
              b'{"inputs": [{"name": "x", "shape": [], "datatype": "BOOL", "data": [true]}]}'),
             (gw.url + ASYNC + "/locked", user, b'{"parameters": [1]}'),
             (gw.url + "/admin/reload", admin, b"")]
    for url, auth in ((u, a) for u, a, _ in posts):
        for form_type in ("text/plain", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x"):
            async with http.post(url, data=b'{"parameters": [1]}',
                                 headers={**auth, "Content-Type": form_type}) as resp:
                body = await resp.json()
                assert resp.status == 415, (url, form_type, body)
            error = body["error"]
            message = error if isinstance(error, str) else error["message"]
            assert "Content-Type: application/json" in message
    for url, auth, body in posts:
        async with http.post(url, data=body, headers={
                **auth, "Content-Type": "application/json; charset=utf-8"}) as resp:
            assert resp.status in (200, 202), (url, await resp.text())


def pool_socket_of(pid):
    """The ipc:// address the gateway ``pid`` listens on for its workers (as an attacker on
    the host would find it)."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/unix") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[6] in inodes and fields[7].endswith("workers.sock"):
                return "ipc://" + fields[7]
    raise AssertionError("no workers.sock found")


async def test_another_process_cannot_join_a_pool_and_take_its_calls(gateway_factory, http):
    import signal
    import sys

    gw = await gateway_factory(with_token({}, False))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, body = await post(http, gw.model_url("take"), b'{"parameters": [1]}', **bearer)
    assert status == 200
    own = body["result"]
    rogue = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "worker", "--connect", pool_socket_of(gw.process.pid),
        "--model", "take", "--version", "1", "--workers", "1", "-c", str(gw.config_path),
        "--json-logs", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        for _ in range(300):
            if gw.events("worker_refused"):
                break
            await asyncio.sleep(0.05)
        assert gw.events("worker_refused"), "the rogue worker was never refused"
        pids = set()
        for _ in range(30):
            status, body = await post(http, gw.model_url("take"), b'{"parameters": [1]}',
                                      **bearer)
            pids.add(body["result"])
        assert pids == {own}
    finally:
        import os

        try:
            os.killpg(rogue.pid, signal.SIGKILL)  # the rogue pool and its workers
        except ProcessLookupError:
            pass
        await rogue.wait()


async def test_a_modelgate_worker_pool_gets_the_clean_environment_and_the_models_env(
        gateway_factory, http, tmp_path):
    import os
    import sys

    keys = tmp_path / "keys"
    make_keys(keys)
    address = f"tcp://127.0.0.1:{free_port()}"
    gw = await gateway_factory({
        "gateway": {"workers_listen": address,
                    "workers_curve": {"secret_key_file": str(keys / "gateway.key_secret"),
                                      "authorized_keys": str(keys / "authorized")}},
        "models": {"remote": {"access": {"public": True}, "env": {"MODEL_SETTING": "m2"},
                              "versions": {1: version(PY, "environment", workers=0)}}}})
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "worker", "--connect", address, "--model",
        "remote", "--version", "1", "--workers", "1", "-c", str(gw.config_path),
        "--key", str(keys / "worker.key_secret"), "--server-key", str(keys / "gateway.key"),
        "--json-logs", env={**os.environ, "HOST_SECRET": "leaked"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        for _ in range(400):
            status, body = await post(http, gw.model_url("remote"), b'{"parameters": []}')
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200, body
        assert body["result"].get("MODEL_SETTING") == "m2"
        assert "HOST_SECRET" not in body["result"]
    finally:
        import signal

        try:
            os.killpg(worker.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        await worker.wait()


async def test_a_curve_key_tied_to_models_cannot_join_another_models_pool(gateway_factory,
                                                                           http, tmp_path):
    import os
    import signal
    import sys

    keys = tmp_path / "keys"
    make_keys(keys)
    address = f"tcp://127.0.0.1:{free_port()}"
    remote_only = {"access": {"public": True},
                   "versions": {1: version(PY, "take", workers=0)}}
    gw = await gateway_factory({
        "gateway": {"workers_listen": address, "request_timeout_s": 2,
                    "workers_curve": {"secret_key_file": str(keys / "gateway.key_secret"),
                                      "authorized_keys": str(keys / "authorized"),
                                      "key_models": {"worker": ["allowed"]}}},
        "models": {"allowed": remote_only, "alice-only": remote_only}})

    async def start(model):
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "worker", "--connect", address, "--model",
            model, "--version", "1", "--workers", "1", "-c", str(gw.config_path),
            "--key", str(keys / "worker.key_secret"), "--server-key", str(keys / "gateway.key"),
            "--json-logs", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)

    workers = [await start("alice-only"), await start("allowed")]
    try:
        for _ in range(400):
            status, _ = await post(http, gw.model_url("allowed"), b'{"parameters": [1]}')
            if status == 200 and gw.events("worker_refused"):
                break
            await asyncio.sleep(0.05)
        assert status == 200
        [refused] = {e["model"] for e in gw.events("worker_refused")}
        assert refused == "alice-only"
        status, body = await post(http, gw.model_url("alice-only"), b'{"parameters": [1]}')
        assert status != 200, body
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            await worker.wait()
