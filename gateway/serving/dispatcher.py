"""The asyncio side of ZeroMQ: sends calls to idle workers and matches replies to callers.

One ROUTER socket serves every pool. Workers connect (DEALER) and say :class:`Ready`; each call
goes to the least busy worker of its version (readiness-based balancing, as in the zguide's
load-balancing broker). When every worker is full, calls wait in the version's bounded queue;
when that is full, the caller gets 503 ``overloaded`` at once.

How many calls a worker may hold is adaptive: as many as fit in about ``QUEUED_WORK_MS`` of its
measured service time (at least 2, at most the worker's ``slots``). A cheap function gets deep
pipelining, so one frame carries many calls and the worker never idles waiting for the next; a
slow one holds one call plus one queued, so a call never waits long behind another on a busy
worker while a sibling is free.

The sockets (``ipc://`` for local pools, and a CURVE-secured ``tcp://`` one for remote pools,
see :mod:`gateway.serving.remote`) are driven straight from the event loop (``add_reader`` on
their file descriptors, no per-message task): calls for the same worker made in one loop
iteration leave as one frame, and every reply frame that has arrived is read in one pass. Every
worker sends a heartbeat each second; one not heard from for ``LIVENESS_S`` is lost (its calls
fail with 502).

While a call is the only one in flight in the whole gateway, its frame asks the worker to stay
awake for ``busy_poll_us`` after answering (``gateway.busy_poll_us``; see
:mod:`workers.connection`): a caller that sends one call after another then finds it awake.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import secrets
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
import zmq

from gateway.errors import Overloaded, Timeout, Unavailable, WorkerLost
from gateway.serving.stats import VersionStats
from workers.wire import (
    HEARTBEAT_S,
    LIVENESS_S,
    Call,
    Calls,
    Heartbeat,
    Ready,
    Rejoin,
    Replies,
    Reply,
    Stop,
    decode_worker_frame,
    encode_frame,
)

log = structlog.get_logger("modelgate.dispatch")

QUEUED_WORK_MS = 2.0
SERVICE_EWMA = 0.05  # weight of each new reply in the service-time estimate
PER_CALL_OVERHEAD_MS = 0.02  # decode/encode around the user's function


class PendingCall:
    """A call between submit and reply; ``worker`` is None while it waits in the queue."""

    __slots__ = ("body", "future", "id", "pool", "request_id", "timeout_s", "timer", "v2_json",
                 "worker")

    def __init__(self, id: int, body: bytes, future: asyncio.Future[Reply],
                 pool: VersionPool, request_id: str = "", v2_json: int = -1) -> None:
        self.id = id
        self.body = body
        self.request_id = request_id
        self.timeout_s = pool.timeout_s
        self.v2_json = v2_json  # >= 0: a raw V2 request for a `tensors: numpy` version
        self.future = future
        self.pool = pool
        self.worker: WorkerLink | None = None
        self.timer: asyncio.TimerHandle | None = None


class WorkerLink:
    """One connected worker, as the gateway sees it."""

    __slots__ = (
        "calls",
        "identity",
        "last_seen",
        "local",
        "outbox",
        "pid",
        "pool",
        "slots",
        "socket",
    )

    def __init__(self, identity: bytes, pid: int, slots: int, pool: VersionPool,
                 socket: zmq.Socket, now: float, local: bool) -> None:  # type: ignore[type-arg]
        self.identity = identity
        self.pid = pid
        self.slots = slots
        self.pool = pool
        self.calls: dict[int, PendingCall] = {}
        self.outbox: list[Call] = []
        self.socket = socket
        self.last_seen = now
        self.local = local  # a process of this host (it may be killed by pid)


@dataclass(eq=False)
class VersionPool:
    """Gateway-side state of one version's pool: its ready workers and its waiting calls."""

    model: str
    version: int
    version_id: str
    timeout_s: float
    max_queue: int
    expected_workers: int
    workers: list[WorkerLink] = field(default_factory=list)
    waiting: deque[PendingCall] = field(default_factory=deque)
    failure: str | None = None  # why the version cannot be served, while it cannot
    service_ms: float = 1.0  # moving average of the time a call takes in a worker
    depth: int = 2  # calls a worker may hold now (see QUEUED_WORK_MS)
    batch_size: int = 0  # > 1: batched version; workers hold two batches' worth of calls
    on_change: list[Callable[[VersionPool], None]] = field(default_factory=list)
    stats: VersionStats = field(default_factory=VersionStats)  # see gateway.serving.stats
    # what its local workers must say to join (see workers.wire.Ready)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    # the pids its supervisor reported starting and not yet exited: the only ones the
    # gateway will signal (a worker's Ready could name any process)
    local_pids: set[int] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.model, self.version, self.version_id)

    @property
    def ready(self) -> bool:
        return bool(self.workers)

    def least_busy(self) -> WorkerLink | None:
        best = None
        depth = self.depth
        for worker in self.workers:
            load = len(worker.calls)
            if load < depth and load < worker.slots and (best is None or load < len(best.calls)):
                best = worker
                if load == 0:
                    break
        return best

    def __post_init__(self) -> None:
        if self.batch_size > 1:
            self.depth = 2 * self.batch_size

    def observe(self, model_ms: float) -> None:
        """Fold one call's service time into the estimate that sets ``depth`` (negative: the
        function never ran, nothing to learn)."""
        if self.batch_size > 1 or model_ms < 0.0:
            return
        self.service_ms += SERVICE_EWMA * (model_ms + PER_CALL_OVERHEAD_MS - self.service_ms)
        self.depth = max(2, 1 + int(QUEUED_WORK_MS / self.service_ms))

    def changed(self) -> None:
        for callback in self.on_change:
            callback(self)


class Dispatcher:
    """Owns the ROUTER socket and the table of calls in flight."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._loop = asyncio.get_running_loop()
        self.context = zmq.Context()
        self._sockets: list[zmq.Socket] = []  # type: ignore[type-arg]
        self._local = self.router()
        self._local.bind(address)
        self.attach(self._local)
        self._pools: dict[tuple[str, int, str], VersionPool] = {}
        self.stats: dict[tuple[str, int], VersionStats] = {}  # per (model, version), for /metrics
        self._workers: dict[bytes, WorkerLink] = {}
        self._ids = itertools.count(1)
        self._dirty: list[WorkerLink] = []
        self._held = 0  # calls sent to workers and not answered: the gateway's load
        self.busy_poll_us = 0  # gateway.busy_poll_us, set by the service
        self._sweeper = self._loop.call_later(HEARTBEAT_S, self._expire_silent)
        # remote workers' CURVE public keys (Z85) -> the only models they may serve
        self.key_models: dict[bytes, frozenset[str]] = {}

    def router(self) -> zmq.Socket:  # type: ignore[type-arg]
        """A ROUTER socket set up as the dispatcher needs; bind it, then :meth:`attach` it."""
        socket = self.context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        socket.setsockopt(zmq.LINGER, 0)
        return socket

    def attach(self, socket: zmq.Socket) -> None:  # type: ignore[type-arg]
        """Serve workers that connect to ``socket`` (a bound ROUTER from :meth:`router`)."""
        self._sockets.append(socket)
        self._loop.add_reader(socket.FD, self._read, socket)

    # ------------------------------------------------------------------ pools

    def add_pool(self, pool: VersionPool) -> None:
        self._pools[pool.key] = pool
        # New content for a served version keeps counting where the old pool's counters are.
        pool.stats = self.stats.setdefault((pool.model, pool.version), pool.stats)

    def remove_pool(self, pool: VersionPool) -> None:
        self._pools.pop(pool.key, None)
        if not any(p.model == pool.model and p.version == pool.version
                   for p in self._pools.values()):
            self.stats.pop((pool.model, pool.version), None)
        for worker in list(pool.workers):
            self.lose_worker(worker, "the pool was stopped")
        self._fail_waiting(pool, Unavailable(f"{pool.model} v{pool.version} was stopped"))

    def stop_workers(self, pool: VersionPool) -> None:
        """Ask the pool's workers to finish what they hold and exit."""
        for worker in pool.workers:
            self._send_frame(worker, encode_frame(Stop()))

    # ------------------------------------------------------------------ calls

    def submit(self, pool: VersionPool, body: bytes, request_id: str = "",
               timeout_s: float | None = None, *, v2_json: int = -1) -> asyncio.Future[Reply]:
        """Queue one call for ``pool``; the future resolves with the worker's :class:`Reply`.
        ``timeout_s``: its own limit (an async prediction's), instead of the pool's;
        ``v2_json``: see :class:`workers.wire.Call`."""
        future: asyncio.Future[Reply] = self._loop.create_future()
        call = PendingCall(next(self._ids), body, future, pool, request_id, v2_json)
        worker = pool.least_busy()
        if worker is not None:
            self._assign(worker, call)
        elif pool.failure is not None and not pool.workers:
            raise _unavailable(pool)
        elif len(pool.waiting) >= pool.max_queue:
            raise Overloaded(f"{pool.model} v{pool.version} is at capacity "
                             f"({len(pool.waiting)} calls waiting); retry shortly")
        else:
            pool.waiting.append(call)
        if timeout_s is not None:
            call.timeout_s = timeout_s
        call.timer = self._loop.call_later(call.timeout_s, self._expire, call)
        return future

    def _assign(self, worker: WorkerLink, call: PendingCall) -> None:
        call.worker = worker
        worker.calls[call.id] = call
        self._held += 1
        if not worker.outbox:
            if not self._dirty:
                self._loop.call_soon(self._flush)
            self._dirty.append(worker)
        worker.outbox.append(Call(call.id, memoryview(call.body), call.v2_json,
                                  call.request_id))

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        sockets = set()
        awake_us = self.busy_poll_us if self._held == 1 else 0
        for worker in dirty:
            calls, worker.outbox = worker.outbox, []
            if worker.identity in self._workers:
                self._send_frame(worker, encode_frame(Calls(calls, awake_us)))
                sockets.add(worker.socket)
        for socket in sockets:  # the FD is edge-triggered: sending may have hidden a reply
            self._read(socket)

    def _send_frame(self, worker: WorkerLink, frame: bytes) -> None:
        try:
            worker.socket.send_multipart((worker.identity, frame), zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the worker is gone; EAGAIN: it is stuck
            self.lose_worker(worker, f"cannot reach the worker ({exc.strerror})")

    def _expire(self, call: PendingCall) -> None:
        if call.future.done():
            return
        pool = call.pool
        message = f"{pool.model} v{pool.version} did not answer within {call.timeout_s:g} s"
        worker = call.worker
        if worker is None:  # still queued: fail it, never send it
            pool.waiting.remove(call)
            call.future.set_exception(Timeout(message + " (all workers were busy)"))
            return
        if worker.calls.pop(call.id, None) is not None:
            self._held -= 1
        call.future.set_exception(Timeout(message))
        log.warning("call_timeout", model=pool.model, version=pool.version, pid=worker.pid)
        self.lose_worker(worker, "killed after a call ran past its timeout")
        if worker.local and worker.pid in pool.local_pids:
            try:
                os.kill(worker.pid, signal.SIGKILL)  # its supervisor starts a replacement
            except ProcessLookupError:
                pass
        elif worker.local:  # it named a process its supervisor did not start: not ours to kill
            log.warning("worker_pid_unknown", model=pool.model, version=pool.version,
                        pid=worker.pid)
            self._send_frame(worker, encode_frame(Stop()))
        else:  # a remote worker cannot be killed from here: tell it to leave; it is not used
            self._send_frame(worker, encode_frame(Stop()))

    # ------------------------------------------------------------------ replies

    def _read(self, socket: zmq.Socket) -> None:  # type: ignore[type-arg]
        now = self._loop.time()
        remote = socket is not self._local
        while True:
            key = b""
            try:
                if remote:  # frames, to read the CURVE key the ZAP handler vouched for
                    identity_frame, payload_frame = socket.recv_multipart(zmq.NOBLOCK,
                                                                          copy=False)
                    identity, payload = identity_frame.bytes, payload_frame.bytes
                    key = str(payload_frame.get("User-Id") or "").encode()
                else:
                    identity, payload = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:  # not two frames: not one of our workers
                continue
            try:
                frame = decode_worker_frame(payload)
            except Exception:  # msgspec errors: a peer that does not speak our protocol
                log.warning("bad_worker_frame", size=len(payload))
                continue
            if isinstance(frame, Replies):
                worker = self._workers.get(identity)
                if worker is not None:
                    worker.last_seen = now
                    self._resolve(worker, frame.replies)
            elif isinstance(frame, Heartbeat):
                worker = self._workers.get(frame.worker)
                if worker is not None:
                    worker.last_seen = now
                else:  # a worker we lost or never knew (we restarted): ask it to rejoin
                    self._send_to(socket, frame.worker, encode_frame(Rejoin()))
            elif isinstance(frame, Ready):
                self._join(identity, frame, socket, now, key)

    def _send_to(self, socket: zmq.Socket, identity: bytes,  # type: ignore[type-arg]
                 frame: bytes) -> None:
        try:
            socket.send_multipart((identity, frame), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _expire_silent(self) -> None:
        """Lose the workers not heard from for ``LIVENESS_S`` (dead or cut-off hosts)."""
        now = self._loop.time()
        for worker in [w for w in self._workers.values() if now - w.last_seen > LIVENESS_S]:
            log.warning("worker_silent", model=worker.pool.model, version=worker.pool.version,
                        pid=worker.pid, silent_s=round(now - worker.last_seen, 1))
            self.lose_worker(worker, f"no heartbeat for {now - worker.last_seen:.1f} s")
        self._sweeper = self._loop.call_later(HEARTBEAT_S, self._expire_silent)

    def _resolve(self, worker: WorkerLink, replies: list[Reply]) -> None:
        calls = worker.calls
        observe = worker.pool.observe
        for reply in replies:
            call = calls.pop(reply.id, None)
            if call is None:
                continue  # it timed out meanwhile
            self._held -= 1
            observe(reply.model_ms)
            if call.timer is not None:
                call.timer.cancel()
            if not call.future.done():
                call.future.set_result(reply)
        self._refill(worker)

    def _refill(self, worker: WorkerLink) -> None:
        waiting = worker.pool.waiting
        limit = min(worker.slots, worker.pool.depth)
        while waiting and len(worker.calls) < limit:
            call = waiting.popleft()
            if not call.future.done():  # skip callers that went away
                self._assign(worker, call)

    def _join(self, identity: bytes, ready: Ready, socket: zmq.Socket,  # type: ignore[type-arg]
              now: float, key: bytes = b"") -> None:
        pool = self._pools.get((ready.model, ready.version, ready.version_id))
        if pool is None:  # a worker of a version not served (any more), or of other code
            log.warning("worker_refused", model=ready.model, version=ready.version,
                        version_id=ready.version_id, pid=ready.pid,
                        reason="no such version is served (is its script the same?)")
            self._send_to(socket, identity, encode_frame(Stop()))
            return
        local = socket is self._local
        if local and not hmac.compare_digest(ready.secret.encode(), pool.secret.encode()):
            log.warning("worker_refused", model=ready.model, version=ready.version,
                        pid=ready.pid, reason="it does not know the pool's secret (not one "
                        "of the pool's own workers)")
            self._send_to(socket, identity, encode_frame(Stop()))
            return
        tied = self.key_models.get(key)
        if not local and tied is not None and ready.model not in tied:
            log.warning("worker_refused", model=ready.model, version=ready.version,
                        pid=ready.pid, public_key=key.decode(),
                        reason="its key may not serve this model (workers_curve.key_models)")
            self._send_to(socket, identity, encode_frame(Stop()))
            return
        if identity in self._workers:  # it rejoined before we noticed it was gone
            self.lose_worker(self._workers[identity], "it announced itself again")
        worker = WorkerLink(identity, ready.pid, ready.slots, pool, socket, now, local=local)
        self._workers[identity] = worker
        pool.workers.append(worker)
        pool.failure = None
        log.info("worker_joined", model=pool.model, version=pool.version, pid=ready.pid)
        self._refill(worker)
        pool.changed()

    # ------------------------------------------------------------------ failures

    def worker_exited(self, pool: VersionPool, pid: int, reason: str) -> None:
        """A local worker process died: fail what it held, at once."""
        for worker in list(pool.workers):
            if worker.pid == pid:
                self.lose_worker(worker, reason)

    def lose_worker(self, worker: WorkerLink, reason: str) -> None:
        if self._workers.pop(worker.identity, None) is None:
            return
        pool = worker.pool
        pool.workers.remove(worker)
        calls, worker.calls = worker.calls, {}
        self._held -= len(calls)
        for call in calls.values():
            if call.timer is not None:
                call.timer.cancel()
            if not call.future.done():
                call.future.set_exception(WorkerLost(
                    f"the worker of {pool.model} v{pool.version} (pid {worker.pid}) "
                    f"was lost during the call: {reason}"))
        pool.changed()

    def _fail_waiting(self, pool: VersionPool, error: Exception) -> None:
        while pool.waiting:
            call = pool.waiting.popleft()
            if call.timer is not None:
                call.timer.cancel()
            if not call.future.done():
                call.future.set_exception(error)

    def fail_pool(self, pool: VersionPool, reason: str) -> None:
        """The version cannot be served (its script fails to load): fail its waiting calls."""
        pool.failure = reason
        if not pool.workers:
            self._fail_waiting(pool, _unavailable(pool))
        pool.changed()

    def close(self) -> None:
        self._sweeper.cancel()
        for socket in self._sockets:
            self._loop.remove_reader(socket.FD)
            socket.close(0)
        self.context.term()


def _unavailable(pool: VersionPool) -> Unavailable:
    """The 503 of a version that cannot load: without the reason, which may hold a path or a
    connection string (it is in the log, and in ``/readyz`` for admin tokens)."""
    return Unavailable(f"{pool.model} v{pool.version} is not available: its script failed to "
                       "load (the reason is in the gateway log, and in /readyz for admin "
                       "tokens)")
