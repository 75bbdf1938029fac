"""The worker's end of the pool channel: one DEALER socket to the gateway, plus a heartbeat.

The heartbeat runs in a thread with its own socket, so a worker deep in a long call (Python
releases the GIL every few ms; rpy2 releases it around R's C calls) still shows the gateway it
is alive, and a worker that is really gone (a dead or cut-off host) is noticed within
``LIVENESS_S``. When the gateway does not know a worker (it restarted, or expired the worker
during a partition) it answers a heartbeat with :class:`Rejoin`, and the worker announces itself
again: ZeroMQ reconnects the socket by itself.

Waiting for calls, a worker sleeps in ZeroMQ unless the gateway's last frame asked it to stay
awake (:class:`Calls` ``awake_us``, sent only while the gateway has no other call in flight):
it then polls the socket for that long first. A sleeping process is woken by its ZeroMQ I/O
thread, and on a virtual machine each wake-up of an idle CPU costs tens of microseconds; a
caller that sends one call after another finds the worker awake, and the hop's latency at c=1
halves (``python -m bench.wakeups``). Under load the gateway asks for nothing, so no CPU that
other processes need is spent polling.

Over TCP the sockets authenticate and encrypt with CURVE (keys in the :class:`PoolSpec`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

import zmq

from workers.wire import (
    HEARTBEAT_S,
    Call,
    Calls,
    Heartbeat,
    PoolSpec,
    Ready,
    Rejoin,
    Replies,
    Reply,
    decode_gateway_frame,
    encode_frame,
)


class GatewayConnection:
    def __init__(self, spec: PoolSpec) -> None:
        self._spec = spec
        self._context = zmq.Context()
        pid = os.getpid()
        self.identity = f"{pid}-{os.urandom(4).hex()}".encode()
        self._socket = self._open(self.identity)
        self._ready = encode_frame(Ready(spec.model, spec.version, spec.version_id, pid,
                                         spec.slots, spec.pool_secret))
        self._socket.send(self._ready)
        self._stopped = threading.Event()
        self._awake_s = 0.0  # from the last Calls: how long to poll before sleeping
        self._beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat.start()

    def _open(self, identity: bytes) -> zmq.Socket:  # type: ignore[type-arg]
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        sock.setsockopt(zmq.LINGER, 1000)
        if self._spec.curve_server_key:
            sock.curve_serverkey = self._spec.curve_server_key.encode()
            sock.curve_publickey = self._spec.curve_public_key.encode()
            sock.curve_secretkey = self._spec.curve_secret_key.encode()
        sock.connect(self._spec.connect)
        return sock

    def _heartbeat(self) -> None:
        sock = self._open(self.identity + b"/hb")
        sock.setsockopt(zmq.CONFLATE, 1)  # after a partition, one heartbeat is enough
        frame = encode_frame(Heartbeat(self.identity))
        while not self._stopped.wait(HEARTBEAT_S):
            try:
                sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                pass
        sock.close(0)

    def _handle(self, frame: bytes, pending: deque[Call]) -> bool:
        """Queue the calls of ``frame``; True when it says stop."""
        message = decode_gateway_frame(frame)
        if isinstance(message, Calls):
            pending.extend(message.calls)
            self._awake_s = message.awake_us / 1e6
            return False
        if isinstance(message, Rejoin):
            self._socket.send(self._ready)
            return False
        return True  # Stop

    def wait_for_calls(self, pending: deque[Call]) -> bool:
        """Block until calls arrive (into ``pending``) or the gateway says stop (True)."""
        if self._awake_s > 0.0:
            awake_until = time.perf_counter() + self._awake_s
            self._awake_s = 0.0
            while not pending and time.perf_counter() < awake_until:
                if self.take_queued(pending):
                    return True
        while not pending:
            if self._handle(self._socket.recv(), pending):
                return True
        return False

    def take_queued(self, pending: deque[Call]) -> bool:
        """Move calls that arrived meanwhile into ``pending``; True if a Stop came."""
        try:
            while True:
                if self._handle(self._socket.recv(zmq.NOBLOCK), pending):
                    return True
        except zmq.Again:
            return False

    def poll(self, timeout_ms: float) -> bool:
        return bool(self._socket.poll(max(1, round(timeout_ms))))

    def send(self, replies: list[Reply]) -> None:
        self._socket.send(encode_frame(Replies(replies)))

    def close(self) -> None:
        self._stopped.set()
        self._beat.join(HEARTBEAT_S + 1)
        self._socket.close()
        self._context.term()
