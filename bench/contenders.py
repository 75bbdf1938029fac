"""Starts and stops the servers a scenario compares, each on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent


class Contender(msgspec.Struct, frozen=True):
    """One server of a scenario: ``kind`` is modelgate, ceiling or plumber."""

    name: str
    kind: str  # modelgate, ceiling, plumber or mlserver
    path: str  # the URL path that is called
    config: str = ""  # modelgate: the deployment file, relative to the repository
    script: str = ""  # ceiling: serve this script's `function` instead of the sum
    function: str = ""
    token: str = ""
    body: object = None  # this contender's request body, when it speaks another protocol
    batched: bool = False  # mlserver: adaptive batching (max 32, 2 ms)


def free_port() -> int:
    """A free port whose next two are free too (MLServer needs three)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            for extra in (1, 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + extra))
            return port
        except OSError:
            continue


def _command(contender: Contender, port: int) -> list[str]:
    if contender.kind == "modelgate":
        return [sys.executable, "-m", "gateway.cli", "serve", str(ROOT / contender.config),
                "--listen", f"127.0.0.1:{port}", "--json-logs"]
    if contender.kind == "ceiling":
        extra = [str(ROOT / contender.script), contender.function] if contender.script else []
        return [sys.executable, "-m", "bench.ceiling", str(port), *extra]
    if contender.kind == "plumber":
        return ["Rscript", str(ROOT / "bench" / "plumber" / "serve.R"), str(port)]
    if contender.kind == "mlserver":
        from bench import mlserver

        repository = mlserver.model_repository(port, contender.batched)
        return [str(mlserver.executable()), "start", str(repository)]
    raise ValueError(f"unknown contender kind {contender.kind}")


def _answers(url: str, body: bytes, token: str) -> bool:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running(contender: Contender, body: bytes,
            timeout: float = 180) -> Iterator[tuple[str, int]]:
    """Start ``contender``, wait until it answers ``body`` with 200, yield its URL and pid,
    then stop it."""
    port = free_port()
    process = subprocess.Popen(_command(contender, port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}{contender.path}"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url, body, contender.token):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{contender.name} did not start (exit {process.poll()})")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in f
                  if line.rstrip().endswith(" kB")}
    return fields.get("Rss", 0) / 1024, fields.get("Pss", 0) / 1024
