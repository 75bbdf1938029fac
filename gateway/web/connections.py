"""Limits below HTTP, so that slow or idle clients cannot hold the gateway's connections
(SPEC §5, issue 15 M4): how long a request's headers may take once its first byte arrived
(``gateway.header_timeout_s``), how long its body may take once the handler reads it
(``body_timeout_s``, :func:`body_timeout`), how long a keep-alive connection may sit idle
(``idle_timeout_s``: aiohttp's ``keepalive_timeout``), and how many connections may be open at
once (``max_connections``; the next one is answered 503 and closed). After an answer given
before its body was read (a 401, a 408...), the rest of the body is drained for at most
``LINGER_S`` (aiohttp's ``lingering_time``, 10 s by default), then the connection closes.

aiohttp has no header timeout, so each connection's protocol is wrapped in a
:class:`ConnectionGuard`: it notes the time of the first byte of a request, and the app's
middleware (:func:`gateway.web.middleware.errors_as_json`) clears it once aiohttp has parsed
the headers and handed the request over; a timer per connection checks the noted time when
it is due. The timer is armed lazily (when a request begins and none is armed) and re-armed
when it fires for a request that has started since, so a keep-alive connection does not arm
and cancel a timer per request (~2 µs a call on uvloop). Everything else is passed through
to aiohttp's own protocol untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from gateway.api import ErrorBody, ErrorDetail

LINGER_S = 2.0


class Limits(NamedTuple):
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


def _raw_response(status: str, type_: str, message: str) -> bytes:
    body = msgspec.json.encode(ErrorBody(ErrorDetail(type_, message, None)))
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + ("Retry-After: 1\r\n" if status.startswith("503") else "")
            + "\r\n").encode() + body


class GuardedServer:
    """aiohttp's protocol factory (its ``Server``), each connection wrapped in a guard; every
    other attribute (``shutdown``, ``connections``...) is the server's."""

    def __init__(self, server: Any, limits: Limits) -> None:
        self._server = server
        self.limits = limits
        self.open = 0
        self._full = _raw_response(
            "503 Service Unavailable", "overloaded",
            f"the gateway has {limits.max_connections} connections open "
            "(gateway.max_connections); retry later")
        self._slow = _raw_response(
            "408 Request Timeout", "request_timeout",
            f"the request's headers took more than {limits.header_timeout_s:g} s "
            "(gateway.header_timeout_s)")

    def __call__(self) -> ConnectionGuard:
        return ConnectionGuard(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class ConnectionGuard(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, a header timer and the connection count
    around it."""

    def __init__(self, owner: GuardedServer) -> None:
        self.owner = owner
        self.inner: Any = None
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.began: float | None = None  # loop time of the first byte of the awaited headers
        self.in_request = False

    @property
    def limits(self) -> Limits:
        return self.owner.limits

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        owner = self.owner
        if owner.open >= owner.limits.max_connections:
            self.transport.write(owner._full)  # type: ignore[union-attr]
            transport.close()
            return
        owner.open += 1
        self.inner = owner._server()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if not self.in_request and self.began is None:  # a request begins
            loop = asyncio.get_running_loop()
            self.began = loop.time()
            if self.timer is None:
                self.timer = loop.call_at(self.began + self.limits.header_timeout_s,
                                          self._check_headers)
        self.inner.data_received(data)

    def request_started(self) -> None:
        """Its headers are in (aiohttp handed the request over); the timer stays armed."""
        self.in_request = True
        self.began = None

    def request_finished(self) -> None:
        self.in_request = False

    def _check_headers(self) -> None:
        """The timer is due: 408 if the headers awaited now began ``header_timeout_s`` ago;
        re-armed for them if they began later; left unarmed if none are awaited."""
        self.timer = None
        if self.transport is None or self.in_request or self.began is None:
            return
        loop = asyncio.get_running_loop()
        deadline = self.began + self.limits.header_timeout_s
        if loop.time() < deadline:
            self.timer = loop.call_at(deadline, self._check_headers)
            return
        self.transport.write(self.owner._slow)
        self.transport.close()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self.inner is not None:
            self.owner.open -= 1
            self.inner.connection_lost(exc)
            self.inner = None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class GuardedRunner(web.AppRunner):
    """``AppRunner`` whose server guards its connections (see the module docstring)."""

    def __init__(self, app: web.Application, limits: Limits, idle_timeout_s: float,
                 **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=idle_timeout_s, lingering_time=LINGER_S,
                         **kwargs)
        self.limits = limits

    async def _make_server(self) -> Any:
        return GuardedServer(await super()._make_server(), self.limits)


def guard_of(request: web.Request) -> ConnectionGuard | None:
    """The guard of the request's connection (None: the app runs without the runner, as in
    tests). The app's one middleware (:func:`gateway.web.middleware.errors_as_json`) tells it
    when a request's headers are in (``request_started``) and when the request is done."""
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, ConnectionGuard) else None


def body_timeout(request: web.Request) -> float | None:
    """``gateway.body_timeout_s`` for a guarded connection (None: no limit, e.g. in tests
    that run the app without the runner)."""
    guard = guard_of(request)
    return guard.limits.body_timeout_s if guard is not None else None
