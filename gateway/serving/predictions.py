"""Asynchronous predictions (SPEC §3): accepted at once, run in the background, kept in SQLite.

A prediction is one row that goes ``queued -> running -> succeeded | failed``. The row is
committed before the 202 goes out, so an accepted prediction survives a restart, even SIGKILL
(WAL with ``synchronous=NORMAL`` loses nothing when only the process dies). On start-up, rows
left queued or running are queued again: a prediction runs at least once, and one that was
running when the gateway died runs again. Finished rows expire after ``async_result_ttl_s``.
The file (and its ``-wal``/``-shm``) is the gateway user's only (0600): it holds callers'
bodies and results. What it keeps is bounded: ``async_max_stored`` rows and
``async_max_bytes`` of bodies and results; a submission beyond either is 503 ``overloaded``.

All SQLite work happens on one thread of its own (one connection, calls in order), so the event
loop never waits on the disk. Bodies are read back from the file when they run, so a long queue
costs no memory. Each model runs at most as many predictions at once as its production version
has workers: a burst of async work queues here, not in the pool that synchronous callers share.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec
import structlog

from gateway.errors import ModelgateError, NotFound, Overloaded
from gateway.serving.service import Service

log = structlog.get_logger("modelgate.async")
T = TypeVar("T")
Status = Literal["queued", "running", "succeeded", "failed"]
RETRY_MAX_S = 1.0  # longest wait before trying again a pool whose queue is full


class PredictionError(msgspec.Struct, frozen=True):
    type: str
    message: str


class PredictionStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of ``GET .../{id}``: ``result`` only once succeeded, ``errors`` once failed."""

    status: Status
    version: int | msgspec.UnsetType = msgspec.UNSET  # the version that ran it, once one did
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    errors: list[PredictionError] | msgspec.UnsetType = msgspec.UNSET


class Row(NamedTuple):
    model: str
    token: str | None
    status: Status
    result: bytes | None
    error_type: str | None
    error_message: str | None
    finished: float | None
    version: int | None



SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, token TEXT, body BLOB,
    status TEXT NOT NULL, version INTEGER, result BLOB, error_type TEXT, error_message TEXT,
    created REAL NOT NULL, finished REAL);
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions (status, created);
CREATE INDEX IF NOT EXISTS predictions_finished ON predictions (finished);
"""


class PredictionStore:
    """The SQLite file; every method runs on the store's own thread (see :class:`AsyncRunner`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        assert self.db is not None, "the store is not open"
        return self.db

    def open(self) -> None:
        if self.path != ":memory:":  # SQLite gives its -wal and -shm the database's mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            _owner_only(self.path)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit each statement
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        if self.path != ":memory:":
            for suffix in ("", "-wal", "-shm"):  # made by an older release, perhaps
                _owner_only(self.path + suffix)

    def usage(self) -> tuple[int, int]:
        """The rows kept and the bytes of their bodies and results."""
        rows, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) + COALESCE(SUM(LENGTH(result)), 0) "
            "FROM predictions").fetchone()
        return int(rows), int(size)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def insert(self, pid: str, model: str, token: str | None, body: bytes) -> None:
        self._db.execute("INSERT INTO predictions (id, model, token, body, status, created) "
                         "VALUES (?, ?, ?, ?, 'queued', ?)", (pid, model, token, body, time.time()))

    def requeue(self) -> list[tuple[str, str]]:
        """Predictions an earlier run left unfinished, oldest first, all marked queued again."""
        self._db.execute("UPDATE predictions SET status = 'queued' WHERE status = 'running'")
        return self._db.execute("SELECT id, model FROM predictions WHERE status = 'queued' "
                                "ORDER BY created").fetchall()

    def body(self, pid: str) -> bytes | None:
        found = self._db.execute("SELECT body FROM predictions WHERE id = ?", (pid,)).fetchone()
        return None if found is None else found[0]

    def mark_running(self, pid: str, version: int) -> None:
        self._db.execute("UPDATE predictions SET status = 'running', version = ? WHERE id = ?",
                         (version, pid))

    def finish(self, pid: str, result: bytes | None, error: PredictionError | None) -> None:
        self._db.execute(
            "UPDATE predictions SET status = ?, result = ?, error_type = ?, error_message = ?, "
            "finished = ?, body = NULL WHERE id = ?",
            ("failed" if error else "succeeded", result, error and error.type,
             error and error.message, time.time(), pid))

    def get(self, pid: str) -> Row | None:
        found = self._db.execute("SELECT model, token, status, result, error_type, "
                                 "error_message, finished, version FROM predictions WHERE id = ?",
                                 (pid,)).fetchone()
        return None if found is None else Row(*found)

    def expire(self, before: float) -> int:
        return self._db.execute("DELETE FROM predictions WHERE finished < ?",
                                (before,)).rowcount


def logged(pid: str) -> str:
    """How the log names a prediction: its id reads its result, so only the id's start."""
    return pid[:8]


def _owner_only(path: str) -> None:
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


class AsyncRunner:
    """Queues predictions per model and runs them through the dispatcher, a few at a time."""

    def __init__(self, service: Service, path: str) -> None:
        self.service = service
        self.store = PredictionStore(path)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="modelgate-async-db")
        self._queues: dict[str, deque[str]] = {}
        self._running: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued = 0  # predictions accepted and not started, reservations included
        self._stored = (0, 0)  # rows kept and their bytes, as of the last look (see submit)
        self._closing = False
        self._cleaner: asyncio.Task[None] | None = None

    @property
    def ttl_s(self) -> float:
        return self.service.deployment.gateway.async_result_ttl_s

    @property
    def max_queued(self) -> int:
        return self.service.deployment.gateway.async_max_queued

    def _check_room(self, body: bytes) -> None:
        """503 when the store is full (see the module docstring); ``self._stored`` is updated
        by every write, so no query runs per submission."""
        settings = self.service.deployment.gateway
        rows, size = self._stored
        if rows >= settings.async_max_stored:
            raise Overloaded(f"{rows} async predictions are kept (the limit is "
                             f"gateway.async_max_stored = {settings.async_max_stored}); retry "
                             "once older results expire")
        if size + len(body) > settings.async_max_bytes:
            raise Overloaded(f"async predictions keep {size} bytes; this body's {len(body)} "
                             "would pass gateway.async_max_bytes = "
                             f"{settings.async_max_bytes}; retry once older results expire")

    async def _db(self, method: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(method, *args))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self._db(self.store.open)
        except (sqlite3.Error, OSError) as exc:  # e.g. beside a config mounted read-only
            log.warning("async_db_unavailable", db=self.store.path, reason=str(exc),
                        consequence="async predictions are kept in memory only; set "
                                    "gateway.async_db to a writable path")
            await self._db(self.store.close)
            self.store = PredictionStore(":memory:")
            await self._db(self.store.open)
        pending = await self._db(self.store.requeue)
        self._stored = await self._db(self.store.usage)
        for pid, model in pending:
            self._queued += 1
            self._queues.setdefault(model, deque()).append(pid)
        for model in list(self._queues):
            self._pump(model)
        self._cleaner = asyncio.create_task(self._expire_periodically())
        log.info("async_predictions", db=self.store.path, requeued=len(pending))

    async def stop(self, drain_s: float) -> None:
        """Let predictions in flight finish (bounded); queued ones stay queued in the file."""
        self._closing = True
        if self._cleaner is not None:
            self._cleaner.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._db(self.store.close)
        self._thread.shutdown()

    async def _expire_periodically(self) -> None:
        every = min(60.0, max(0.05, self.ttl_s / 4))
        while True:
            await asyncio.sleep(every)
            try:
                removed = await self._db(self.store.expire, time.time() - self.ttl_s)
            except sqlite3.Error as exc:
                log.warning("async_expire_failed", error=str(exc))
                continue
            if removed:
                log.info("async_expired", predictions=removed)
                self._stored = await self._db(self.store.usage)

    # ------------------------------------------------------------------ the two calls

    async def submit(self, model: str, token: str | None, body: bytes) -> str:
        if self._queued >= self.max_queued:
            raise Overloaded(f"{self._queued} async predictions are queued (the limit is "
                             f"gateway.async_max_queued = {self.max_queued}); retry later")
        self._check_room(body)
        self._queued += 1  # reserved before the write, so concurrent submits respect the limit
        rows, size = self._stored
        self._stored = (rows + 1, size + len(body))
        pid = secrets.token_hex(16)
        try:
            await self._db(self.store.insert, pid, model, token, body)
        except BaseException:
            self._queued -= 1
            rows, size = self._stored
            self._stored = (rows - 1, size - len(body))
            raise
        self._queues.setdefault(model, deque()).append(pid)
        self._pump(model)
        return pid

    async def status(self, model: str, pid: str, caller: str | None,
                     restricted: bool) -> PredictionStatus:
        """The prediction's state, as the caller may see it: on a restricted model, only the
        token that submitted it may read it (another one is told it does not exist), also when
        it was submitted without a token while the model was public."""
        row = await self._db(self.store.get, pid)
        if (row is None or row.model != model
                or (restricted and row.token != caller)
                or (row.finished is not None and row.finished + self.ttl_s < time.time())):
            raise NotFound(f"no async prediction `{pid}` for model `{model}` (results are "
                           f"kept for {self.ttl_s:g} s)")
        version = msgspec.UNSET if row.version is None else row.version
        if row.status == "succeeded":
            return PredictionStatus("succeeded", version=version,
                                    result=msgspec.Raw(row.result or b"null"))
        if row.status == "failed":
            return PredictionStatus("failed", version=version, errors=[
                PredictionError(row.error_type or "internal", row.error_message or "")])
        return PredictionStatus(row.status, version=version)

    # ------------------------------------------------------------------ running

    def _limit(self, model: str) -> int:
        try:
            routes = self.service.table.model(model)
        except NotFound:
            return 1  # it runs, and fails saying the model is gone
        return max(1, routes.versions[routes.production].pool.expected_workers)

    def _pump(self, model: str) -> None:
        queue = self._queues.get(model)
        while (queue and not self._closing
               and self._running.get(model, 0) < self._limit(model)):
            pid = queue.popleft()
            self._queued -= 1
            self._running[model] = self._running.get(model, 0) + 1
            task = asyncio.create_task(self._run(model, pid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, model: str, pid: str) -> None:
        started = time.perf_counter()
        try:
            body = await self._db(self.store.body, pid)
            outcome = None if body is None else await self._call(model, pid, body)
        except sqlite3.Error:  # the row stays as it was: the next start runs it again
            log.exception("async_store_failed", prediction=logged(pid))
            return
        finally:
            self._running[model] -= 1
            self._pump(model)
        if outcome is None:
            return  # expired meanwhile, or the gateway is stopping: it stays queued
        version, result, error = outcome
        try:
            await self._db(self.store.finish, pid, result, error)
        except sqlite3.Error:
            log.exception("async_store_failed", prediction=logged(pid))
        else:  # the body is dropped, the result kept
            rows, size = self._stored
            self._stored = (rows, size - len(body or b"") + len(result or b""))
        log.info("async_prediction", prediction=logged(pid), model=model, version=version,
                 status="failed" if error else "succeeded", error=error and error.type,
                 ms=round((time.perf_counter() - started) * 1000.0, 3))

    async def _call(self, model: str, pid: str, body: bytes
                    ) -> tuple[int | None, bytes | None, PredictionError | None] | None:
        """Run one prediction on the production version: (version, result, error), or None
        when the gateway stops before it could start."""
        delay = 0.05
        while True:  # a full pool queue is a reason to wait, not to fail
            try:
                served, replied = self.service.submit(model, "prod", body, pid,
                                                      asynchronous=True)
            except ModelgateError as exc:  # the model is gone
                return None, None, PredictionError(exc.type, exc.message)
            refused = replied.exception() if replied.done() else None
            if not isinstance(refused, Overloaded):
                break
            if self._closing:
                return None
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        if isinstance(refused, ModelgateError):  # its version is unavailable
            return None, None, PredictionError(refused.type, refused.message)
        await self._db(self.store.mark_running, pid, served.number)
        try:
            reply = await replied
        except ModelgateError as exc:
            return served.number, None, PredictionError(exc.type, exc.message)
        if reply.error is not None:
            return served.number, None, PredictionError(reply.error.type, reply.error.message)
        return served.number, reply.result, None


def database_path(service: Service) -> str:
    """``gateway.async_db``, relative to the config file (``:memory:``: nothing survives)."""
    configured = service.deployment.gateway.async_db
    if configured == ":memory:":
        return configured
    return str(service.deployment.base_dir / configured)
