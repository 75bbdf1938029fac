"""One call to one reply, without sockets: what both worker loops (one call at a time, and
batched) do with a call, as pure functions of a :class:`Call` and the loaded runner.

Every failure becomes the :class:`Reply` the client should see: a body that is not a call is
400 ``bad_request``, arguments that do not fit the function are 400 ``bad_arguments``, and a
function that raises (or returns what cannot become JSON) is 500 ``model_error``.
"""

from __future__ import annotations

from workers.errors import BadArguments, ModelFailure
from workers.runners import Runner
from workers.wire import BadEnvelope, Call, CallError, Envelope, Reply, decode_envelope

NOT_RUN_MS = -1.0  # the model time of a call whose function never ran (not measured)


class Running:
    """The request a worker is running, for its log lines (see
    :func:`workers.supervisor.configure_logging`): one attribute set per call, no lookup."""

    request_id: str | None = None


RUNNING = Running()


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
    RUNNING.request_id = call.request_id
    try:
        result, model_ms = runner.call(parsed.parameters, parsed.data)
    except (BadArguments, ModelFailure) as exc:
        return failure_reply(call.id, exc)
    finally:
        RUNNING.request_id = None
    return Reply(call.id, model_ms, result)
