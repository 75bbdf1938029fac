"""Slow and idle clients with real sockets (issue 15, M4): unfinished headers, a body that stops
coming, idle keep-alive connections and too many connections are cut off in bounded time, and
the gateway keeps serving everyone else."""

import asyncio
import time

import msgspec
import pytest

from conftest import TEST_MODELS, start_gateway, version

pytestmark = pytest.mark.timeout(60)
LIMITS = {"header_timeout_s": 1, "body_timeout_s": 1, "idle_timeout_s": 2, "max_connections": 6}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("slow"), {
        "gateway": LIMITS,
        "models": {"m": {"access": {"public": True},
                         "versions": {1: version(TEST_MODELS / "hostile.py", "take",
                                                 workers=1)}}}})
    yield running
    await running.stop()


async def connect(gw):
    host, port = gw.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def closed_after(reader, limit_s):
    """What the server sent until it closed the connection, and how long that took."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit_s)
    return data, time.monotonic() - started


def error_of(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), msgspec.json.decode(body)["error"]


async def call_works(gw):
    reader, writer = await connect(gw)
    body = b'{"parameters": [1]}'
    writer.write(b"POST /models/m/latest/model HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                 % (len(body), body))
    data, _ = await closed_after(reader, 10)
    writer.close()
    return data.startswith(b"HTTP/1.1 200")


async def test_unfinished_headers_get_408_and_the_connection_closes(gw):
    reader, writer = await connect(gw)
    writer.write(b"POST /models/m/latest/model HTTP/1.1\r\nHost: t\r\n")
    for _ in range(3):  # trickling more header lines does not buy time
        await asyncio.sleep(0.4)
        writer.write(b"X-Slow: 1\r\n")
    data, took = await closed_after(reader, 5)
    assert took < 3
    status, error = error_of(data)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert error["type"] == "request_timeout" and "header_timeout_s" in error["message"]
    writer.close()
    assert await call_works(gw)


async def test_unfinished_headers_of_a_later_request_on_a_kept_alive_connection_get_408(gw):
    """The header timer is armed once per connection, not per request: the second request's
    headers get their whole ``header_timeout_s`` from their own first byte (the timer armed for
    the first request is re-armed when it comes due), then 408."""
    reader, writer = await connect(gw)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    await asyncio.wait_for(reader.readexactly(length), 5)
    await asyncio.sleep(0.6)  # the first request's timer is still armed, for 0.4 s from now
    writer.write(b"POST /models/m/latest/model HTTP/1.1\r\nHost: t\r\n")
    data, took = await closed_after(reader, 6)
    assert took >= 0.9  # not cut when the first request's deadline passed
    status, error = error_of(data)
    assert status == "HTTP/1.1 408 Request Timeout" and error["type"] == "request_timeout"
    writer.close()
    assert await call_works(gw)


async def test_a_body_that_stops_coming_gets_408_and_the_connection_closes(gw):
    reader, writer = await connect(gw)
    writer.write(b"POST /models/m/latest/model HTTP/1.1\r\nHost: t\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"para")
    data, took = await closed_after(reader, 8)
    assert took < 4.5  # the body timeout, then at most 2 s draining what is left
    status, error = error_of(data)
    assert status.startswith("HTTP/1.1 408")
    assert error["type"] == "request_timeout" and "body_timeout_s" in error["message"]
    writer.close()


async def test_idle_connections_are_closed_after_the_idle_timeout(gw):
    reader, writer = await connect(gw)  # says nothing at all
    _, took = await closed_after(reader, 6)
    assert 1.5 < took < 4
    writer.close()
    reader, writer = await connect(gw)  # one request, then keeps the connection idle
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    data, took = await closed_after(reader, 6)
    assert data.startswith(b"HTTP/1.1 200") and 1.5 < took < 4
    writer.close()


async def test_connections_beyond_the_cap_get_503_and_others_still_work_after(gw):
    held = [await connect(gw) for _ in range(LIMITS["max_connections"])]
    await asyncio.sleep(0.2)
    reader, writer = await connect(gw)
    data, _ = await closed_after(reader, 3)
    status, error = error_of(data)
    assert status == "HTTP/1.1 503 Service Unavailable" and b"Retry-After: 1" in data
    assert error["type"] == "overloaded" and "max_connections" in error["message"]
    writer.close()
    for _, w in held:
        w.close()
    await asyncio.sleep(0.3)
    assert await call_works(gw)
