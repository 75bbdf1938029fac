"""The ceiling: a bare aiohttp + uvloop server doing the same JSON work in-process.

One POST route: decode the request envelope with msgspec, call the same function (the `sum` of
the basics example, or any script's function), encode a response of modelgate's shape. No hop,
no log, no worker process: what one process alone can do on this machine.
    python -m bench.ceiling PORT [SCRIPT FUNCTION]
"""

from __future__ import annotations

import sys
import time

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


async def handle(request: web.Request) -> web.Response:
    started = time.perf_counter()
    envelope = decode(await request.read())
    t = time.perf_counter()
    result = FUNCTION(*envelope.parameters)
    model_ms = (time.perf_counter() - t) * 1000
    body = encode(Response(result, RELEASE, "0", model_ms,
                           (time.perf_counter() - started) * 1000))
    return web.Response(body=body, headers={"Content-Type": "application/json"})


FUNCTION = lambda *numbers: sum(numbers)  # noqa: E731


def main() -> None:
    global FUNCTION
    if len(sys.argv) > 3:
        import os
        import runpy

        script = os.path.abspath(sys.argv[2])
        os.chdir(os.path.dirname(script))
        FUNCTION = runpy.run_path(script)[sys.argv[3]]
    app = web.Application()
    app.router.add_route("POST", "/{path:.*}", handle)
    uvloop.run(web._run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                            print=None))


if __name__ == "__main__":
    main()
