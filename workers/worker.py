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

from workers.connection import GatewayConnection
from workers.errors import BadArguments, ModelFailure
from workers.runners import Runner
from workers.wire import (
    BadEnvelope,
    Call,
    CallError,
    Envelope,
    PoolSpec,
    Reply,
    decode_envelope,
)

log = structlog.get_logger("modelgate.worker")

FLUSH_AFTER_S = 0.001


NOT_RUN_MS = -1.0  # the model time of a call whose function never ran (not measured)


def parse(call: Call) -> Envelope | Reply:
    """The call's arguments, or the 400 reply that says what is wrong with its body."""
    try:
        return decode_envelope(call.body)
    except BadEnvelope as exc:
        return Reply(call.id, NOT_RUN_MS, error=CallError(400, "bad_request", str(exc)))


def failure_reply(call_id: int, exc: Exception) -> Reply:
    if isinstance(exc, BadArguments):
        return Reply(call_id, NOT_RUN_MS, error=CallError(400, "bad_arguments", str(exc)))
    model_ms = exc.model_ms if isinstance(exc, ModelFailure) else NOT_RUN_MS
    return Reply(call_id, model_ms, error=CallError(500, "model_error", str(exc)))


def answer(runner: Runner, call: Call) -> Reply:
    """Run one call, turning every failure into the error the client should see."""
    parsed = parse(call)
    if isinstance(parsed, Reply):
        return parsed
    try:
        result, model_ms = runner.call(parsed.parameters, parsed.data)
    except (BadArguments, ModelFailure) as exc:
        return failure_reply(call.id, exc)
    return Reply(call.id, model_ms, result)


def serve(spec: PoolSpec, runner: Runner) -> None:
    """Join the version's pool and answer calls until the gateway says stop."""
    gateway = GatewayConnection(spec)
    log.info("worker_ready", model=spec.model, version=spec.version, pid=os.getpid())
    try:
        if spec.batch_max_size > 1:
            from workers.batching import serve_batched

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
