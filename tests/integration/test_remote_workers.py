"""Remote worker pools across real hosts: the gateway in this network namespace, a worker in a
namespace of its own joined by a veth pair, ZeroMQ CURVE over TCP between them. The link is cut
and restored for real (``ip link set ... down``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEST_MODELS, free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2 (`ip`)")

SCRIPT = TEST_MODELS / "remote_fns.py"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def hosts():
    """A namespace for the worker host, joined to this one by a veth pair."""
    tag = f"{os.getpid() % 10000}{os.urandom(2).hex()}"
    ns, here, there = f"mgw{tag}", f"mga{tag}", f"mgb{tag}"
    subnet = 100 + int.from_bytes(os.urandom(1), "big") % 100
    gw_ip, worker_ip = f"10.251.{subnet}.1", f"10.251.{subnet}.2"
    ip("netns", "add", ns)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        ip("link", "set", there, "netns", ns)
        ip("addr", "add", f"{gw_ip}/30", "dev", here)
        ip("link", "set", here, "up")
        ip("-n", ns, "addr", "add", f"{worker_ip}/30", "dev", there)
        ip("-n", ns, "link", "set", there, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield {"ns": ns, "link": here, "gateway_ip": gw_ip}
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def make_keys(directory: Path) -> None:
    (directory / "authorized").mkdir(parents=True)
    for name in ("gateway", "worker", "intruder"):
        subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "new", name, "--dir",
                        str(directory)], check=True, capture_output=True)
    shutil.copy(directory / "worker.key", directory / "authorized" / "worker.key")


async def start_worker(ns: str, config: Path, address: str, version: int, key: str,
                       keys: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-m", "gateway.cli", "worker",
        "--connect", address, "--model", "m", "--version", str(version), "--workers", "1",
        "-c", str(config), "--key", str(keys / f"{key}.key_secret"),
        "--server-key", str(keys / "gateway.key"), "--json-logs",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)


async def ready_state(http, gw, version: int) -> bool:
    async with http.get(f"{gw.url}/readyz") as resp:
        return (await resp.json())["versions"][f"m/{version}"]["ready"]


async def until(predicate, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_remote_worker_joins_loses_its_link_and_rejoins(hosts, gateway_factory, http,
                                                              tmp_path):
    keys = tmp_path / "keys"
    make_keys(keys)
    address = f"tcp://{hosts['gateway_ip']}:{free_port()}"
    gw = await gateway_factory({
        "gateway": {"workers_listen": address,
                    "workers_curve": {"secret_key_file": str(keys / "gateway.key_secret"),
                                      "authorized_keys": str(keys / "authorized")}},
        "models": {"m": {"access": {"public": True}, "versions": {
            1: {"language": "python", "script": str(SCRIPT), "function": "where",
                "workers": 0, "timeout_s": 30},
            2: {"language": "python", "script": str(SCRIPT), "function": "where",
                "workers": 0}}}}})
    workers = [await start_worker(hosts["ns"], gw.config_path, address, 1, "worker", keys),
               await start_worker(hosts["ns"], gw.config_path, address, 2, "intruder", keys)]
    try:
        await until(lambda: ready_state(http, gw, 1), 30)
        async with http.post(gw.model_url("m", 1), json={"parameters": []}) as resp:
            assert resp.status == 200
            remote_pid = (await resp.json())["result"]

        # A call in flight when the link goes down fails with 502 once heartbeats stop,
        # not after its 30 s timeout, and the pool is no longer ready.
        slow = asyncio.create_task(http.post(gw.model_url("m", 1), json={"parameters": [3]}))
        await asyncio.sleep(0.5)
        ip("link", "set", hosts["link"], "down")
        started = asyncio.get_running_loop().time()
        resp = await asyncio.wait_for(slow, 15)
        assert resp.status == 502
        assert (await resp.json())["error"]["type"] == "worker_lost"
        assert asyncio.get_running_loop().time() - started < 10
        assert not await ready_state(http, gw, 1)

        # The link comes back: the worker rejoins by itself and serves again.
        ip("link", "set", hosts["link"], "up")
        await until(lambda: ready_state(http, gw, 1), 40)
        async with http.post(gw.model_url("m", 1), json={"parameters": []}) as resp:
            assert resp.status == 200
            assert (await resp.json())["result"] == remote_pid  # the same warm process

        # The worker with a key the gateway does not know never joined.
        assert not await ready_state(http, gw, 2)
        refused = gw.events("worker_refused")
        intruder_key = (keys / "intruder.key").read_text()
        assert any(e["public_key"] in intruder_key for e in refused)
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            await asyncio.wait_for(worker.wait(), 15)
