"""The audit log (SPEC §6): one JSON line per start, stop, reload and version change.

Both the gateway (start, stop, reloads) and the CLI (publish, promote, rollback, unpublish)
append to the same file, so each line is one ``write`` on a file opened with ``O_APPEND``
(lines from two processes never interleave) followed by ``fsync`` (a line that was reported is
on disk). A line names the actor by its token name, OS user or ``gateway``; never a token.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

from gateway.config import Deployment

Action = Literal["start", "stop", "reload", "reload_failed", "publish", "promote", "rollback",
                 "unpublish", "republish", "gc"]
VERSION_ACTIONS = ("publish", "promote", "rollback", "unpublish", "republish")
READ_BLOCK = 64 * 1024


class AuditLine(msgspec.Struct, frozen=True, kw_only=True):
    """One audited event. ``version`` is the version acted on; ``before`` and ``after`` are the
    model's production version (what ``labels/prod`` serves) before and after the action."""

    time: str
    actor: str
    action: Action
    model: str | None = None
    version: int | None = None
    before: int | None = None
    after: int | None = None
    result: Literal["ok", "failed"] = "ok"
    details: str = ""
    config_sha256: str | None = None  # of the config file a reload read, or an edit wrote
    snapshot: str | None = None  # the snapshot a publish or republish serves (`modelgate gc`)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(AuditLine).decode


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def config_sha256(data: bytes) -> str:
    """Names one content of a config file, so the CLI can find the reload of what it wrote."""
    return hashlib.sha256(data).hexdigest()


def audit_path(deployment: Deployment) -> Path:
    """``gateway.audit_log``; a relative path is relative to the config file."""
    return deployment.base_dir / deployment.gateway.audit_log


def append(path: Path, line: AuditLine) -> None:
    """Append ``line`` and make it durable (blocking: run it off the event loop)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _owner_only(fd)
        os.write(fd, _encode(line) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _owner_only(fd: int) -> None:
    """Tighten a log an older release created readable by others (when it is ours to change)."""
    if os.fstat(fd).st_mode & 0o077:
        try:
            os.fchmod(fd, 0o600)
        except OSError:  # another user's file, e.g. the CLI run by an operator: leave it
            pass


def size(path: Path) -> int:
    """Where the next line will start; lines after this offset are news."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_from(path: Path, offset: int = 0) -> list[AuditLine]:
    """Every line from ``offset`` on, oldest first; lines that do not parse are skipped."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    return [line for line in map(_parse, data.split(b"\n")) if line is not None]


def recent(path: Path, limit: int, model: str | None = None,
           action: str | None = None) -> list[AuditLine]:
    """The last ``limit`` lines that match, oldest first, reading the file from its end."""
    found: list[AuditLine] = []
    for line in _backwards(path):
        if (model is None or line.model == model) and (action is None or line.action == action):
            found.append(line)
            if len(found) >= limit:
                break
    found.reverse()
    return found


def wait_for_reload(path: Path, offset: int, digest: str, timeout_s: float,
                    poll_s: float = 0.1) -> AuditLine | None:
    """The gateway's ``reload`` or ``reload_failed`` line for the file content ``digest``,
    appended after ``offset``; None when none came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        for line in read_from(path, offset):
            if line.action in ("reload", "reload_failed") and line.config_sha256 == digest:
                return line
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


class Published:
    """Who published each version, and when: the audit log's ``publish`` and ``republish``
    lines that succeeded, read once, then only what was appended since (the versions list
    asks on every poll of the management page, and the log only grows). A file that was
    replaced or shrank (rotated) is read again from its start. Safe to call from threads."""

    def __init__(self) -> None:
        self._file: tuple[Path, int] | None = None  # the path and inode read so far
        self._offset = 0
        self._lines: dict[str, dict[int, AuditLine]] = {}
        self._lock = threading.Lock()

    def of(self, path: Path, model: str) -> dict[int, AuditLine]:
        """Version -> its latest successful publish (or republish) line, for ``model``."""
        with self._lock:
            self._catch_up(path)
            return dict(self._lines.get(model, {}))

    def _catch_up(self, path: Path) -> None:
        try:
            with path.open("rb") as f:
                info = os.fstat(f.fileno())
                if self._file != (path, info.st_ino) or info.st_size < self._offset:
                    self._file, self._offset, self._lines = (path, info.st_ino), 0, {}
                f.seek(self._offset)
                data = f.read(info.st_size - self._offset)
        except FileNotFoundError:
            self._file, self._offset, self._lines = None, 0, {}
            return
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += complete
        for line in map(_parse, data[:complete].split(b"\n")):
            if (line is not None and line.action in ("publish", "republish")
                    and line.result == "ok" and line.model is not None
                    and line.version is not None):
                self._lines.setdefault(line.model, {})[line.version] = line


def _parse(raw: bytes) -> AuditLine | None:
    if not raw.strip():
        return None
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        return None


def _backwards(path: Path) -> Iterator[AuditLine]:
    """The file's lines newest first, a block at a time (an audit log only grows)."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        position = f.seek(0, os.SEEK_END)
        tail = b""
        while position > 0:
            step = min(READ_BLOCK, position)
            position -= step
            f.seek(position)
            *complete, tail_start = (f.read(step) + tail).split(b"\n")[::-1]
            tail = tail_start
            for raw in complete:
                line = _parse(raw)
                if line is not None:
                    yield line
        line = _parse(tail)
        if line is not None:
            yield line
