"""The last log lines of each served version's workers, for ``GET /admin/models/{m}/logs``.

A pool's processes write their log lines to stderr (:mod:`workers.supervisor`: each names the
model, the version and the request being run, and so does whatever the user's code prints or
logs). The gateway reads that pipe, passes every line on to its own stderr as before, and keeps
the last ``gateway.worker_log_lines`` (default :data:`LINES_PER_VERSION`) of each version in
a ring buffer. Reading the pipe is off
the calls' path: a call costs nothing here unless its code writes a line.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import msgspec

LINES_PER_VERSION = 1000
_decode = msgspec.json.Decoder().decode


class LogLine(msgspec.Struct, frozen=True):
    """``seq`` orders every line the gateway kept (``since`` takes it); ``line`` is the
    worker's JSON line as written, or ``{"text": ...}`` for output that is not JSON."""

    seq: int
    model: str
    version: int
    line: dict[str, Any]


class WorkerLogs:
    def __init__(self, size: int = LINES_PER_VERSION) -> None:
        self.size = size
        self._rings: dict[tuple[str, int], deque[LogLine]] = {}
        self._seq = itertools.count(1)

    def add(self, model: str, version: int, raw: bytes) -> None:
        text = raw.rstrip(b"\n")
        if not text:
            return
        try:
            line = _decode(text)
        except msgspec.DecodeError:
            line = None
        if not isinstance(line, dict):  # a C library's output, a console-format log line...
            line = {"event": "output", "text": text.decode(errors="replace"),
                    "model": model, "version": version, "request_id": None}
        ring = self._rings.get((model, version))
        if ring is None:
            ring = self._rings[(model, version)] = deque(maxlen=self.size)
        ring.append(LogLine(next(self._seq), model, version, line))

    def lines(self, model: str, since: int | str | None = None, version: int | None = None,
              limit: int = LINES_PER_VERSION) -> list[LogLine]:
        """The model's kept lines (of one version, or all), oldest first: after the sequence
        number ``since``, or at or after the ISO time ``since``; the last ``limit``."""
        found: list[LogLine] = []
        for (m, v), ring in self._rings.items():
            if m != model or (version is not None and v != version):
                continue
            for entry in ring:
                if isinstance(since, int) and entry.seq <= since:
                    continue
                if isinstance(since, str) and str(entry.line.get("timestamp", "")) < since:
                    continue
                found.append(entry)
        found.sort(key=lambda e: e.seq)
        return found[-limit:]
