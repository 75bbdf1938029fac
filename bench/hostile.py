"""Replays the hostile corpus of issue 15 against a real gateway, one request at a time (each
at most 64 KiB), and reports per request the longest stall of the gateway's event loop and the
memory it added. Not a test: it prints figures (and writes a markdown report).

- **Loop stall**: a probe sends ``GET /healthz`` on its own keep-alive connection every 2 ms
  while the hostile request is in flight; the longest probe round trip is the figure (the
  loop cannot answer a probe while it is stalled; an idle round trip is ~0.3 ms).
- **Memory**: the gateway's peak RSS during the request minus its RSS before it (the peak is
  reset per request through ``/proc/PID/clear_refs``, which needs the gateway to be ours or
  root's).

``--source DIR`` serves from another checkout of modelgate (e.g. the commit before the
hardening, extracted with ``git archive``) with the same interpreter, for before/after figures.

    .venv/bin/python -m bench.hostile [--source DIR] [--r]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import yaml

from bench.contenders import ROOT, WORK, free_port

LIMIT = 64 * 1024
GOAL_MS, GOAL_MB = 50.0, 50.0
JSON = {"Content-Type": "application/json"}


def nested(depth: int, leaf: object = 0) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def v2(*inputs: dict[str, object]) -> bytes:
    return msgspec.json.encode({"inputs": list(inputs)})


def tensor(name: str, shape: list[int], datatype: str, data: list[object]) -> dict[str, object]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def corpus(r: bool) -> list[tuple[str, str, bytes]]:
    """(what, path, body): the issue's findings, and the fuzzer's hostile shapes."""
    empty = [65536] + [1] * 30 + [0]
    infer = "/v2/models/py/infer"
    call = "/models/py/latest/model"
    items = [
        ("V2: BOOL [65536]+[1]*30+[0], data []", infer, v2(tensor("x", empty, "BOOL", []))),
        ("V2: four such inputs", infer,
         v2(*(tensor(n, empty, "BOOL", []) for n in "abcd"))),
        ("V2: [0]*29000 then a list 900 deep", infer,
         v2(tensor("x", [29001], "INT64", [0] * 29000 + [nested(900)]))),
        ("V2: shape [2**62, 2**62]", infer, v2(tensor("x", [2**62, 2**62], "BOOL", [True]))),
        ("V2: 1,024 inputs of shape []", infer,
         v2(*(tensor(f"i{i}", [], "BOOL", [True]) for i in range(1024)))),
        ("V2: [7000, 1, 1] nested data", infer,
         v2(tensor("x", [7000, 1, 1], "INT64", [[[1]]] * 7000))),
        ("V2: 150 FP64 numbers of 300 digits", infer,
         v2(tensor("x", [150], "FP64", [10**300] * 150))),
        ("call: a value nested 400 deep", call,
         msgspec.json.encode({"parameters": [nested(400)]})),
        ("call: a value nested 30,000 deep", call,
         b'{"parameters": [' + b"[" * 30000 + b"]" * 30000 + b"]}"),
        ("call: an integer of 4,000 digits", call,
         b'{"parameters": [' + b"9" * 4000 + b"]}"),
        ("call: 6,000 numbers 1e308", call,
         msgspec.json.encode({"parameters": [[1e308] * 6000]})),
        ("call: version number of 5,000 digits", "/models/py/" + "9" * 5000 + "/model",
         b'{"parameters": [1]}'),
    ]
    if r:
        items.append(("R call: a value nested 400 deep", "/models/r/latest/model",
                      msgspec.json.encode({"parameters": [nested(400)]})))
    for what, _, body in items:
        assert len(body) <= LIMIT, (what, len(body))
    return items


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def probe(http: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get(url) as resp:
            await resp.read()
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.002)
    return worst * 1000.0


async def measure(base: str, pid: int, what: str, path: str, body: bytes
                  ) -> tuple[str, int, float, float, float]:
    limits = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=limits,
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        for _ in range(20):  # warm the probe's connection
            async with http.get(base + "/healthz") as resp:
                await resp.read()
        before = rss_kb(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak RSS
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(http, base + "/healthz", stop))
        started = time.perf_counter()
        async with http.post(base + path, data=body, headers=JSON) as resp:
            await resp.read()
            status = resp.status
        took = (time.perf_counter() - started) * 1000.0
        stop.set()
        stall = await prober
        added = (rss_kb(pid, "VmHWM") - before) / 1024.0
    return what, status, took, stall, added


async def run(source: Path, r: bool) -> list[tuple[str, int, float, float, float]]:
    WORK.mkdir(parents=True, exist_ok=True)
    models = {"py": {"access": {"public": True}, "versions": {1: {
        "language": "python", "script": str(ROOT / "bench" / "models" / "hostile.py"),
        "function": "anything", "workers": 1}}}}
    if r:
        models["r"] = {"access": {"public": True}, "versions": {1: {
            "language": "r", "script": str(ROOT / "bench" / "models" / "hostile.R"),
            "function": "anything", "workers": 1}}}
    config = WORK / "hostile.yaml"
    config.write_text(yaml.safe_dump({"gateway": {"async_db": ":memory:"}, "models": models}))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(source)}
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(config), "--listen",
        f"127.0.0.1:{port}", "--json-logs", cwd=str(source), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(base + "/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        results = []
        for what, path, body in corpus(r):
            results.append(await measure(base, gateway.pid, what, path, body))
            print(f"{results[-1][0]:45s} {results[-1][1]:4d} {results[-1][2]:9.1f} ms  "
                  f"stall {results[-1][3]:8.1f} ms  +{results[-1][4]:7.1f} MB", flush=True)
        return results
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(gateway.wait(), 60)
        except TimeoutError:
            gateway.kill()
            await gateway.wait()


def report(results: list[tuple[str, int, float, float, float]], source: Path) -> str:
    lines = [f"Hostile corpus against `{source.name}` (each request <= 64 KiB; goal: no stall "
             f"> {GOAL_MS:g} ms, no request adding > {GOAL_MB:g} MB)", "",
             "| request | status | time (ms) | longest loop stall (ms) | memory added (MB) |",
             "|---|---:|---:|---:|---:|"]
    for what, status, took, stall, added in results:
        lines.append(f"| {what} | {status} | {took:.1f} | {stall:.1f} | {added:.1f} |")
    worst_stall = max(r[3] for r in results)
    worst_mb = max(r[4] for r in results)
    lines += ["", f"Longest stall: {worst_stall:.1f} ms; most memory added: {worst_mb:.1f} MB "
              f"({'within' if worst_stall <= GOAL_MS and worst_mb <= GOAL_MB else 'over'} "
              "the goal)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the modelgate checkout to serve (default: this one)")
    parser.add_argument("--r", action="store_true", help="include the R model")
    args = parser.parse_args()
    results = asyncio.run(run(args.source.resolve(), args.r))
    print()
    print(report(results, args.source.resolve()))


if __name__ == "__main__":
    main()
