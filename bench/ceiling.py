"""The ceiling: a bare aiohttp + uvloop server doing the same JSON work in-process.

One POST route: decode the request envelope with msgspec, call the same function (by default
`add` of examples/basics/basics.py, the `sum` model; or any script's function), encode a
response of modelgate's shape with the same ``X-Request-Id`` header. No hop, no log, no worker
process: what one process alone can do on this machine. It gets the gateway's GC settings, so
the difference measured is the hop, not tuning.
    python -m bench.ceiling PORT [SCRIPT FUNCTION]
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import runpy
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import uvloop
from aiohttp import web


class Envelope(msgspec.Struct):
    parameters: list[object] = []


class Release(msgspec.Struct):
    model: str = "sum"
    model_version: str = "ceiling"
    model_version_number: int = 1
    harness_version: str = "ceiling"


class Response(msgspec.Struct):
    result: object
    release: Release
    request_id: str
    model_time_in_ms: float
    timing: float


decode = msgspec.json.Decoder(Envelope).decode
encode = msgspec.json.Encoder().encode
RELEASE = Release()
SUM = (Path(__file__).resolve().parent.parent / "examples" / "basics" / "basics.py", "add")
RID_PREFIX = os.urandom(4).hex()
rid_counter = itertools.count(1)


def handler(function: Callable[..., Any]) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        rid = f"{RID_PREFIX}{next(rid_counter):08x}"
        envelope = decode(await request.read())
        t = time.perf_counter()
        result = function(*envelope.parameters)
        model_ms = (time.perf_counter() - t) * 1000
        body = encode(Response(result, RELEASE, rid, model_ms,
                               (time.perf_counter() - started) * 1000))
        return web.Response(body=body, headers={"Content-Type": "application/json",
                                                "X-Request-Id": rid})

    return handle


async def serve(port: int, function: Callable[..., Any]) -> None:
    app = web.Application()
    app.router.add_route("POST", "/{path:.*}", handler(function))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    await stop.wait()
    await runner.cleanup()


def load(script: str | Path, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``script``, run from the script's folder as a worker would."""
    path = Path(script).resolve()
    os.chdir(path.parent)
    return runpy.run_path(str(path))[name]  # type: ignore[no-any-return]


def main() -> None:
    script, name = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else SUM
    uvloop.run(serve(int(sys.argv[1]), load(script, name)))


if __name__ == "__main__":
    main()
