"""The worker loop: one process, one loaded function, calls from the gateway over ZeroMQ.

The loop takes every call the gateway has queued for it, answers them in order and sends the
replies in one frame (flushed at least every millisecond), so a cheap function costs one
message round trip per *batch* rather than per call.
"""

from __future__ import annotations

import os
import time
from collections import deque

import structlog

from workers.batching import serve_batched
from workers.calls import answer
from workers.connection import GatewayConnection
from workers.runners import Runner
from workers.wire import Call, PoolSpec, Reply

log = structlog.get_logger("modelgate.worker")

FLUSH_AFTER_S = 0.001


def serve(spec: PoolSpec, runner: Runner) -> None:
    """Join the version's pool and answer calls until the gateway says stop."""
    gateway = GatewayConnection(spec)
    log.info("worker_ready", model=spec.model, version=spec.version, pid=os.getpid())
    try:
        if spec.batch_max_size > 1:
            serve_batched(spec, runner, gateway)
        else:
            _serve_calls(runner, gateway)
    finally:
        gateway.close()


def _serve_calls(runner: Runner, gateway: GatewayConnection) -> None:
    pending: deque[Call] = deque()
    stopping = gateway.wait_for_calls(pending)
    while pending:
        replies: list[Reply] = []
        flush_at = time.monotonic() + FLUSH_AFTER_S
        while pending:
            replies.append(answer(runner, pending.popleft()))
            if not pending and not stopping:
                stopping = gateway.take_queued(pending)
            if not pending or time.monotonic() >= flush_at:
                gateway.send(replies)
                replies = []
                flush_at = time.monotonic() + FLUSH_AFTER_S
        if not stopping:
            stopping = gateway.wait_for_calls(pending)
