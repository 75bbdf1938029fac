"""A gateway started as root runs its pools, and so the models' code, as an unprivileged user
(``gateway.worker_user``, ``nobody`` by default): that code cannot read the gateway's
environment or memory, signal it, or read the files it keeps; a user that cannot run the pools
is a refused start that names what to open."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import (
    as_unprivileged,
    free_port,
    open_to_workers,
    require_root,
    token_sha256,
    version,
    world_readable_dir,
)
from gateway.serving.worker_user import WorkerUserError, resolve

pytestmark = pytest.mark.timeout(120)

# The model tries what a hostile model would: who am I, what can I reach of the gateway.
PROBE = '''\
import os, signal

LOADED_AS = os.getuid()


def probe(gateway_pid, paths):
    reached = {}
    for name in ["environ", "mem"]:
        try:
            with open(f"/proc/{gateway_pid}/{name}", "rb") as f:
                f.read(1)
            reached[name] = True
        except OSError:
            reached[name] = False
    try:
        os.kill(gateway_pid, 0)
        reached["signal"] = True
    except PermissionError:
        reached["signal"] = False
    for path in paths:
        try:
            open(path, "rb").close()
            reached[path] = True
        except OSError:
            reached[path] = False
    return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "gateway_pid": gateway_pid,
            "loaded_as": LOADED_AS, "home": os.environ.get("HOME"), "reached": reached}
'''


def project(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    return version(tmp_path / "probe.py", "probe")


async def probe(http, gw, paths=(), pid=None):
    body = {"data": {"gateway_pid": pid or gw.process.pid, "paths": list(paths)}}
    async with http.post(f"{gw.url}/models/probe/latest/model", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["result"]


async def test_a_root_gateway_runs_model_code_as_nobody_out_of_its_reach(
        tmp_path, gateway_factory, http):
    require_root("switching the workers to another user")
    nobody = pwd.getpwnam("nobody")
    gw = await gateway_factory({
        "tokens": {"ops": {"sha256": "0" * 64, "admin": True}},
        "models": {"probe": {"access": {"public": True}, "versions": {1: project(tmp_path)}}},
    })
    # the gateway's own files: its audit log, its async store, its config
    directory = gw.config_path.parent
    kept = [directory / "audit.jsonl", directory / "async.sqlite3"]
    for path in kept:
        assert path.exists(), path
    result = await probe(http, gw, [str(p) for p in kept])
    assert (result["uid"], result["gid"], result["groups"]) == (nobody.pw_uid, nobody.pw_gid, [])
    assert result["loaded_as"] == nobody.pw_uid  # the script ran as nobody too, at load
    assert result["home"] == nobody.pw_dir
    assert result["reached"] == {"environ": False, "mem": False, "signal": False,
                                 **{str(p): False for p in kept}}


def processes_with(variable: str) -> list[int]:
    """The pids whose environment holds ``variable`` (read as root)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if variable.encode() + b"=" in f.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


async def test_one_models_code_cannot_read_another_models_workers(tmp_path, gateway_factory,
                                                                  http):
    require_root("switching the workers to another user")
    (tmp_path / "other.py").write_text("def f():\n    return 1\n")
    gw = await gateway_factory({"models": {
        "probe": {"access": {"public": True}, "versions": {1: project(tmp_path)}},
        "other": {"env": {"OTHER_MODELS_SECRET": "s3cr3t"},
                  "versions": {1: version(tmp_path / "other.py", "f", workers=1)}},
    }})
    others = processes_with("OTHER_MODELS_SECRET")
    assert len(others) == 2  # its pool parent and its worker, both nobody's like the probe
    for pid in others:
        result = await probe(http, gw, pid=pid)
        assert result["gateway_pid"] == pid
        assert {k: result["reached"][k] for k in ("environ", "mem")} == {
            "environ": False, "mem": False}, pid


async def test_worker_user_root_keeps_the_workers_root_on_purpose(tmp_path, gateway_factory,
                                                                   http):
    require_root("a gateway started as root")
    gw = await gateway_factory({
        "gateway": {"worker_user": "root"},
        "models": {"probe": {"access": {"public": True}, "versions": {1: project(tmp_path)}}},
    })
    result = await probe(http, gw)
    assert result["uid"] == 0 and result["loaded_as"] == 0


async def serve(config_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(config_path), "--listen",
        "127.0.0.1:0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        raise
    return process.returncode, err.decode()


async def test_an_unknown_worker_user_is_a_refused_start_naming_it(tmp_path):
    require_root("a gateway started as root")
    open_to_workers(tmp_path)
    (tmp_path / "deployment.yaml").write_text(
        "gateway: {worker_user: no-such-user-here}\n"
        f"models: {{probe: {{access: {{public: true}}, versions: {{1: "
        f"{{language: python, script: {tmp_path / 'probe.py'}, function: probe}}}}}}}}\n")
    (tmp_path / "probe.py").write_text(PROBE)
    code, err = await serve(tmp_path / "deployment.yaml")
    assert code == 1, err
    assert "gateway.worker_user: there is no user `no-such-user-here` on this machine" in err


async def test_a_state_dir_nobody_cannot_enter_is_a_refused_start_naming_the_directory():
    require_root("a gateway started as root")
    outer = world_readable_dir("modelgate-closed-")
    try:
        closed = outer / "closed"
        closed.mkdir(mode=0o700)
        closed.chmod(0o700)
        (closed / "probe.py").write_text(PROBE)
        (closed / "deployment.yaml").write_text(
            "models: {probe: {access: {public: true}, versions: {1: "
            "{language: python, script: probe.py, function: probe}}}}\n")
        code, err = await serve(closed / "deployment.yaml")
        assert code == 1, err
        assert "workers run as `nobody` (the gateway is root), who cannot run them" in err
        assert f"{closed} (drwx------, owner root) is closed to `nobody`" in err
        closed.chmod(0o711)  # opened: the same deployment serves
        code, err = await asyncio.wait_for(_serves(closed / "deployment.yaml"), 90)
        assert code == 0, err
    finally:
        shutil.rmtree(outer)


async def _serves(config_path):
    """Serve until the gateway says it serves, then stop it: exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(config_path), "--listen",
        "127.0.0.1:0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    lines = []
    while line := await process.stderr.readline():
        lines.append(line.decode())
        if "modelgate serving on" in lines[-1]:
            process.terminate()
    await process.wait()
    return process.returncode, "".join(lines)


def test_a_gateway_that_is_not_root_runs_workers_as_itself_and_refuses_another_user():
    def check():
        assert resolve(None) is None
        assert resolve("nobody") is None  # itself: nothing to switch
        with pytest.raises(WorkerUserError, match="`daemon` needs the gateway to start as root "
                                                  r"\(it runs as `nobody`"):
            resolve("daemon")

    require_root("dropping to another user for this check")
    as_unprivileged(check)


def test_modelgate_check_loads_scripts_as_the_worker_user(tmp_path):
    require_root("a gateway started as root")
    open_to_workers(tmp_path)
    (tmp_path / "refuses_root.py").write_text(
        "import os\nassert os.getuid() != 0, 'loaded as root'\ndef f():\n    return 1\n")
    (tmp_path / "deployment.yaml").write_text(
        "models: {m: {versions: {1: {language: python, script: refuses_root.py, "
        "function: f}}}}\n")
    def check():
        return subprocess.run([sys.executable, "-m", "gateway.cli", "check",
                               str(tmp_path / "deployment.yaml")], capture_output=True,
                              text=True, timeout=120)

    tmp_path.chmod(0o700)  # closed to nobody: said so, naming the directory
    closed = check()
    assert closed.returncode == 1
    assert f"{tmp_path} (drwx------, owner root) is closed to `nobody`" in closed.stderr
    tmp_path.chmod(0o711)
    done = check()
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_reload_keeps_the_running_worker_user_and_says_it_needs_a_restart(
        tmp_path, gateway_factory, http):
    require_root("a gateway started as root")
    admin = {"Authorization": "Bearer worker-user-admin"}
    config = {
        "tokens": {"ops": {"sha256": token_sha256("worker-user-admin"), "admin": True}},
        "models": {"probe": {"access": {"public": True}, "versions": {1: project(tmp_path)}}},
    }
    gw = await gateway_factory(config)
    config["gateway"] = {"worker_user": "root"}
    config["models"]["probe"]["versions"][2] = project(tmp_path)
    gw.config_path.write_text(yaml.safe_dump(config))
    async with http.post(f"{gw.url}/admin/reload", json={}, headers=admin) as resp:
        report = await resp.json()
        assert resp.status == 200, report
    assert report["needs_restart"] == ["gateway.worker_user"]
    assert report["started"] == ["probe v2"]
    result = await probe(http, gw)  # the new version's pool, started by this reload
    assert result["uid"] == pwd.getpwnam("nobody").pw_uid


async def test_serve_worker_user_overrides_the_config_for_this_process(tmp_path, http):
    require_root("a gateway started as root")
    open_to_workers(tmp_path)
    (tmp_path / "probe.py").write_text(PROBE)
    config = tmp_path / "deployment.yaml"
    config.write_text("models: {probe: {access: {public: true}, versions: {1: "
                      "{language: python, script: probe.py, function: probe}}}}\n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(config), "--listen",
        f"127.0.0.1:{port}", "--worker-user", "root", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        while b"modelgate serving on" not in await asyncio.wait_for(
                process.stderr.readline(), 60):
            pass
        async with http.post(f"http://127.0.0.1:{port}/models/probe/latest/model",
                             json={"data": {"gateway_pid": process.pid, "paths": []}}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["result"]["uid"] == 0
        assert "worker_user" not in config.read_text()  # the file still says nothing
    finally:
        process.terminate()
        await process.wait()
