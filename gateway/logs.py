"""Structured logs, configured once at the entry point.

JSON lines on stdout in production, a console renderer on a terminal. The per-request line is
on the hot path, so lines are rendered with msgspec and written to a buffer that is flushed a
few times a second (and at exit) instead of one write system call per request.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, BinaryIO

import msgspec
import structlog
import structlog.tracebacks


class BufferedLines:
    """A file for structlog's BytesLogger whose ``flush`` is deferred to :meth:`drain`."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > 64 * 1024:
            self.drain()

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        if self._buffer:
            try:
                self._raw.write(self._buffer)
                self._raw.flush()
            except (BrokenPipeError, ValueError):
                pass
            self._buffer.clear()


_sink: BufferedLines | None = None
_encoder = msgspec.json.Encoder()


def _encode(event: dict[str, Any], **_: Any) -> bytes:
    return _encoder.encode(event)


def configure(json_logs: bool | None = None) -> BufferedLines | None:
    """Set up structlog for this process; ``None`` means JSON unless stdout is a terminal."""
    global _sink
    if json_logs is None:
        json_logs = not sys.stdout.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json_logs:
        _sink = BufferedLines(sys.stdout.buffer)
        structlog.configure(
            processors=[*shared, structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
                structlog.processors.JSONRenderer(serializer=_encode)],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.BytesLoggerFactory(_sink),  # type: ignore[arg-type]
            cache_logger_on_first_use=True,
        )
    else:
        _sink = None
        structlog.configure(
            processors=[*shared, structlog.dev.ConsoleRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
            cache_logger_on_first_use=True,
        )
    return _sink


class _FastTimestamp:
    """ISO 8601 UTC timestamps like structlog's TimeStamper, formatting the date once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event


class RequestLog:
    """The one-line-per-request events, on the hot path: the same JSON line shape as every other
    event and the same structlog ``BytesLogger`` sink, without the bound-logger machinery
    (context copies, processor chain), which costs ~4 us a line; this path costs ~2 us."""

    def __init__(self, sink: BufferedLines) -> None:
        self._write = structlog.BytesLogger(sink).msg  # type: ignore[arg-type]
        self._stamp = _FastTimestamp()

    def info(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        fields["level"] = "info"
        self._write(_encoder.encode(self._stamp(None, "", fields)))


def request_logger() -> Any:
    """Where request lines go: the fast path for JSON logs, structlog's console otherwise."""
    if _sink is None:
        return structlog.get_logger("modelgate.requests")
    return RequestLog(_sink)


def drain() -> None:
    """Write out buffered log lines."""
    if _sink is not None:
        _sink.drain()
