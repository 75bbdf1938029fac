"""One call to one reply, without sockets: what both worker loops (one call at a time, and
batched) do with a call, as pure functions of a :class:`Call` and the loaded runner.

Every failure becomes the :class:`Reply` the client should see: a body that is not a call is
400 ``bad_request``, arguments that do not fit the function are 400 ``bad_arguments``, and a
function that raises (or returns what cannot become JSON) is 500 ``model_error``. Anything
else that goes wrong while converting a call or its result (a bug, or a value no check
foresaw) is 500 ``internal`` for that call, logged with its traceback: a call never kills its
worker.
"""

from __future__ import annotations

import structlog

from workers.errors import BadArguments, ModelFailure
from workers.runners import Runner
from workers.wire import BadEnvelope, Call, CallError, Envelope, Reply, decode_envelope

NOT_RUN_MS = -1.0  # the model time of a call whose function never ran (not measured)
log = structlog.get_logger("modelgate.worker")


class Running:
    """The request a worker is running, for its log lines (see
    :func:`workers.supervisor.configure_logging`): one attribute set per call, no lookup."""

    request_id: str | None = None


RUNNING = Running()


def parse(call: Call) -> Envelope | Reply:
    """The call's arguments, or the 400 reply that says what is wrong with its body."""
    try:
        if call.v2_json >= 0:  # a V2 request for a `tensors: numpy` version
            from workers.tensors import arguments

            try:
                return Envelope(data=arguments(call.body, call.v2_json))
            except (ValueError, TypeError, OverflowError, MemoryError) as exc:
                if isinstance(exc, BadEnvelope):
                    raise
                raise BadEnvelope(f"the V2 tensors cannot be made into arrays: {exc}") from None
        return decode_envelope(call.body)
    except BadEnvelope as exc:
        return Reply(call.id, NOT_RUN_MS, error=CallError(400, "bad_request", str(exc)))


def failure_reply(call_id: int, exc: Exception) -> Reply:
    if isinstance(exc, BadArguments):
        return Reply(call_id, NOT_RUN_MS, error=CallError(400, "bad_arguments", str(exc)))
    if isinstance(exc, ModelFailure):
        return Reply(call_id, exc.model_ms, error=CallError(500, "model_error", str(exc)))
    return unexpected_reply(call_id, exc)


def unexpected_reply(call_id: int, exc: BaseException) -> Reply:
    """The 500 for what no runner check foresaw; the traceback goes to the worker's log."""
    log.error("call_failed", exc_info=exc)
    return Reply(call_id, NOT_RUN_MS, error=CallError(
        500, "internal", f"the worker could not handle this call ({type(exc).__name__}); "
        "see the worker log"))


def answer(runner: Runner, call: Call) -> Reply:
    """Run one call, turning every failure into the error the client should see."""
    parsed = parse(call)
    if isinstance(parsed, Reply):
        return parsed
    RUNNING.request_id = call.request_id
    try:
        result, model_ms = runner.call(parsed.parameters, parsed.data)
    except Exception as exc:  # anything: see the module docstring
        return failure_reply(call.id, exc)
    finally:
        RUNNING.request_id = None
    return Reply(call.id, model_ms, result)
