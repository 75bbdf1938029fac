"""Adaptive batching: concurrent calls of one version become one call of the function.

A batched worker gathers the calls it holds into a batch of up to ``max_size``. When it had to
wait for the first call of a batch (the pool was idle) and its previous batch held more than one
call (so calls are arriving together), it waits at most ``max_wait_ms`` for others: a lone call
is never delayed by more than that, and traffic that comes one call at a time is not delayed at
all. Under load, calls that queued up while the previous batch ran are taken at once, and
batches fill by themselves.

Calls in a batch are grouped by shape (the same positional count, or the same argument names);
each group is one call of the function, whose every argument is the list of that argument's
values, and which must return one result per input. A call whose body is invalid gets its own
400 and does not hold up the others.
"""

from __future__ import annotations

import time
from collections import deque

from workers.calls import RUNNING, failure_reply, parse
from workers.connection import GatewayConnection
from workers.runners import Runner
from workers.wire import Call, Envelope, PoolSpec, Reply


def answer_batch(runner: Runner, calls: list[Call]) -> list[Reply]:
    """Replies for ``calls``, in order, from as few calls of the function as their shapes allow."""
    replies: dict[int, Reply] = {}
    groups: dict[tuple[object, ...], list[tuple[Call, Envelope]]] = {}
    for call in calls:
        parsed = parse(call)
        if isinstance(parsed, Reply):
            replies[call.id] = parsed
            continue
        shape = (("data", *parsed.data) if parsed.data is not None
                 else ("parameters", len(parsed.parameters or ())))
        groups.setdefault(shape, []).append((call, parsed))
    for group in groups.values():
        envelopes = [envelope for _, envelope in group]
        # one call of the function answers them all: its log lines name every request
        RUNNING.request_id = ",".join(call.request_id for call, _ in group)
        try:
            if envelopes[0].data is not None:
                results, model_ms = runner.call_batch(None, [e.data or {} for e in envelopes])
            else:
                results, model_ms = runner.call_batch([e.parameters or [] for e in envelopes],
                                                      None)
        except Exception as exc:  # anything: no call kills its worker (workers.calls)
            for call, _ in group:
                replies[call.id] = failure_reply(call.id, exc)
            continue
        finally:
            RUNNING.request_id = None
        for (call, _), result in zip(group, results):
            replies[call.id] = Reply(call.id, model_ms, result)
    return [replies[call.id] for call in calls]


def serve_batched(spec: PoolSpec, runner: Runner, gateway: GatewayConnection) -> None:
    """The worker loop of a batched version (see the module docstring)."""
    max_size = spec.batch_max_size
    max_wait_s = spec.batch_max_wait_ms / 1000.0
    pending: deque[Call] = deque()
    stopping = False
    last_size = 0
    while pending or not stopping:
        if not pending:
            stopping = gateway.wait_for_calls(pending)
            if not stopping:  # calls that queued up while the last batch ran: take them all
                stopping = gateway.take_queued(pending)
            deadline = time.monotonic() + max_wait_s
            while last_size > 1 and len(pending) < max_size and not stopping:
                left_ms = (deadline - time.monotonic()) * 1000.0
                if left_ms <= 0 or not gateway.poll(left_ms):
                    break
                stopping = gateway.take_queued(pending)
        elif not stopping:
            stopping = gateway.take_queued(pending)
        if not pending:
            break
        batch = [pending.popleft() for _ in range(min(max_size, len(pending)))]
        last_size = len(batch)
        gateway.send(answer_batch(runner, batch))
