"""Starts and watches one supervisor process per served version.

The supervisor (:mod:`workers.supervisor`) restarts its own workers; this handle restarts the
supervisor itself if it dies, with backoff, and turns its status events into dispatcher actions:
a worker that exits fails its in-flight calls at once (502), a script that fails to load marks
the version unavailable with the reason.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog

from gateway.serving.dispatcher import Dispatcher, VersionPool
from gateway.serving.worker_logs import WorkerLogs
from gateway.serving.worker_user import WorkerUser, worker_environment
from workers.wire import (
    LoadFailed,
    PoolSpec,
    WorkerExited,
    WorkerStarted,
    decode_event,
    encode_spec,
)

log = structlog.get_logger("modelgate.pools")

RESTART_FIRST_S = 0.2
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 30.0
LINE_LIMIT = 2**20  # the longest log line kept whole (a traceback with its frames)


async def spawn_supervisor(spec: PoolSpec, stderr: int | None = None,
                           user: WorkerUser | None = None) -> asyncio.subprocess.Process:
    """``python -m workers.supervisor`` for ``spec`` (sent on its stdin, then closed): in a
    session of its own, with only the model's environment, and as ``user`` when given (see
    :mod:`gateway.serving.worker_user`); its events come on stdout."""
    argv, env = [spec.python or sys.executable, "-m", "workers.supervisor"], \
        worker_environment(spec.env)
    if user is not None:
        argv, env = user.command(argv), user.environment(env)
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        env=env, start_new_session=True, limit=LINE_LIMIT,
    )
    assert process.stdin is not None
    process.stdin.write(encode_spec(spec))
    process.stdin.close()
    return process


class SupervisorProcess:
    """The gateway's handle on one supervisor process (``python -m workers.supervisor``)."""

    def __init__(self, spec: PoolSpec, pool: VersionPool, dispatcher: Dispatcher,
                 logs: WorkerLogs | None = None, user: WorkerUser | None = None) -> None:
        self.spec = spec
        self.user = user  # None: as the gateway's own user
        self.pool = pool
        self.dispatcher = dispatcher
        self.logs = logs  # None: the pool's log lines go straight to the gateway's stderr
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.restarts = 0
        self._started_at = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.spec.workers == 0:
            return  # remote workers only: they join through gateway.workers_listen
        self.process = await spawn_supervisor(
            self.spec, None if self.logs is None else asyncio.subprocess.PIPE, self.user)
        self._started_at = asyncio.get_running_loop().time()
        self._watcher = asyncio.create_task(self._watch(self.process))
        if self.logs is not None:
            assert self.process.stderr is not None
            reader = asyncio.create_task(self._keep_logs(self.process.stderr, self.logs))
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)

    async def _keep_logs(self, stderr: asyncio.StreamReader, logs: WorkerLogs) -> None:
        """Every line on to the gateway's stderr, and into the version's ring buffer."""
        out = sys.stderr.buffer
        model, version = self.spec.model, self.spec.version
        while True:
            try:
                line = await stderr.readline()
            except ValueError:  # longer than LINE_LIMIT: passed on in pieces, not kept
                line = await stderr.read(LINE_LIMIT)
                out.write(line)
                continue
            if not line:
                return
            out.write(line)
            out.flush()
            logs.add(model, version, line)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            event = decode_event(line)
            if isinstance(event, WorkerStarted):
                self.pool.local_pids.add(event.pid)
            elif isinstance(event, WorkerExited):
                self.pool.local_pids.discard(event.pid)
                self.dispatcher.worker_exited(
                    self.pool, event.pid, f"the worker process exited with code {event.code}")
                if not self.stopping:  # the supervisor starts a replacement
                    self.pool.stats.worker_restarts += 1
            elif isinstance(event, LoadFailed):
                log.error("load_failed", model=self.spec.model, version=self.spec.version,
                          reason=event.reason)
                self.dispatcher.fail_pool(self.pool, event.reason.splitlines()[0])
        code = await process.wait()
        self.pool.local_pids.clear()
        for worker in list(self.pool.workers):  # its workers die with it
            self.dispatcher.lose_worker(worker, "the pool parent process exited")
        if self.stopping:
            return
        if asyncio.get_running_loop().time() - self._started_at > STABLE_AFTER_S:
            self.restarts = 0  # it had been serving: a crash now is not a crash loop
        delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** min(self.restarts, 10))
        self.restarts += 1
        self.pool.stats.pool_restarts += 1
        # A crashed pool is restarted at once (its calls wait in the queue, bounded by their
        # timeouts); only a script that cannot load (LoadFailed) makes calls fail fast.
        log.warning("pool_exited", model=self.spec.model, version=self.spec.version, code=code,
                    restart_in_s=delay)
        await asyncio.sleep(delay)
        if not self.stopping:
            await self.start()

    async def stop(self, drain_s: float = 10.0) -> None:
        """Drain, then stop: calls queued or in flight finish first (bounded by ``drain_s``),
        then workers are told to exit, then the supervisor is stopped."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        pool = self.pool
        while (pool.waiting or any(w.calls for w in pool.workers)) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.dispatcher.stop_workers(pool)  # remote workers too
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=max(1.0, deadline - loop.time()))
        except ProcessLookupError:
            pass
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._watcher is not None:
            await self._watcher
