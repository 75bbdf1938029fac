"""The corridor: every message that crosses between the gateway and worker processes.

Two channels, both typed with msgspec Structs and encoded once per message:

* the **ZeroMQ pool channel** (gateway ROUTER <-> worker DEALER), msgpack frames:
  workers announce themselves with :class:`Ready`, the gateway sends :class:`Calls` (a batch
  of one or more calls, to amortise the per-message cost), workers answer with :class:`Replies`.
  Request bodies travel as the raw JSON bytes the client sent and results come back as JSON
  bytes, so no JSON is decoded or re-encoded in the gateway.
* the **pool status channel**: a supervisor process reads a :class:`PoolSpec` (msgpack) on
  stdin and writes :class:`PoolEvent` lines (JSON) on stdout, so the gateway learns at once when
  a worker dies or a script fails to load.

Nothing else is imported across the gateway/workers boundary (but for ``modelgate worker``,
which runs a supervisor), as the import contract in pyproject.toml checks.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union

import msgspec

# ---------------------------------------------------------------- pool channel (ZeroMQ)


class Ready(msgspec.Struct, array_like=True, tag="ready", frozen=True):
    """A worker joins its version's pool; ``slots`` is how many calls it may hold at once.
    ``secret`` is its pool's (:attr:`PoolSpec.pool_secret`): on the local socket the gateway
    takes only workers that know it, so no other process of the host joins a pool."""

    model: str
    version: int
    version_id: str
    pid: int
    slots: int
    secret: str = ""


class Call(msgspec.Struct, array_like=True, frozen=True):
    """One call: ``body`` is the client's JSON request body, untouched; ``request_id`` names
    it in the worker's log lines.

    With ``v2_json`` >= 0, ``body`` is instead a V2 inference request for a ``tensors: numpy``
    version, as the client sent it: ``v2_json`` bytes of JSON, then any binary tensor data
    (Triton's binary extension); the worker makes NumPy arrays of it (``workers.tensors``).
    A worker decodes ``body`` as a view into the frame it received, so tensor bytes are not
    copied again on their way to ``numpy.frombuffer``."""

    id: int
    body: memoryview
    v2_json: int = -1
    request_id: str = ""


class Calls(msgspec.Struct, array_like=True, tag="calls", frozen=True):
    """Calls for one worker. ``awake_us`` > 0: the gateway had no other call in flight, so once
    these are answered the worker stays awake polling for the next call for that long, instead
    of sleeping (see ``workers.connection``)."""

    calls: list[Call]
    awake_us: int = 0


class CallError(msgspec.Struct, array_like=True, frozen=True):
    """Why a call failed; ``type`` is one of the stable error types of the HTTP API."""

    status: int
    type: str
    message: str


class Reply(msgspec.Struct, array_like=True, frozen=True):
    """The answer to :class:`Call` ``id``: ``result`` is JSON bytes, or ``error`` is set."""

    id: int
    model_ms: float
    result: bytes = b""
    error: CallError | None = None


class Replies(msgspec.Struct, array_like=True, tag="replies", frozen=True):
    replies: list[Reply]


class Stop(msgspec.Struct, array_like=True, tag="stop", frozen=True):
    """Asks a worker to finish what it holds and exit (drain)."""


class Heartbeat(msgspec.Struct, array_like=True, tag="heartbeat", frozen=True):
    """Sent every ``HEARTBEAT_S`` by a worker's heartbeat thread (its own socket, so a worker
    busy in a long call still shows it is alive); ``worker`` is the identity it speaks for."""

    worker: bytes


class Rejoin(msgspec.Struct, array_like=True, tag="rejoin", frozen=True):
    """The gateway does not know this worker (it restarted, or expired the worker during a
    network partition): announce yourself again with :class:`Ready`."""


WorkerFrame = Union[Ready, Replies, Heartbeat]
GatewayFrame = Union[Calls, Stop, Rejoin]

HEARTBEAT_S = 1.0
LIVENESS_S = 3.5  # a worker not heard from for this long is lost

encode_frame = msgspec.msgpack.Encoder().encode
decode_worker_frame = msgspec.msgpack.Decoder(WorkerFrame).decode
decode_gateway_frame = msgspec.msgpack.Decoder(GatewayFrame).decode

# ---------------------------------------------------------------- the request body


class Envelope(msgspec.Struct, frozen=True):
    """A model call's body: named arguments in ``data`` or positional ones in ``parameters``.
    Workers decode it; the gateway only checks it where a call is stored before it runs."""

    data: dict[str, Any] | None = None
    parameters: list[Any] | None = None


class BadEnvelope(ValueError):
    """A body that is not what was expected; the message says what is wrong with it."""


USAGE = 'Send {"data": {"name": value, ...}} or {"parameters": [value, ...]}.'
# How deep a call's body may nest arrays and objects (the body's own object and its "data" or
# "parameters" count): the same limit for every language, checked before any conversion, so
# that no runner recurses deeper than this on a client's value.
MAX_NESTING = 100
_decode_envelope = msgspec.json.Decoder(Envelope).decode
T = TypeVar("T")


def decode_json(decode: Callable[[Any], T], body: bytes | memoryview, what: str,
                usage: str = "") -> T:
    """``decode(body)`` with a msgspec decoder; raises :class:`BadEnvelope` naming ``what``
    and, for a body of the wrong shape, ``usage``."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        raise BadEnvelope(f"{what}: {exc}. {usage}".rstrip()) from None
    except msgspec.DecodeError as exc:
        raise BadEnvelope(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadEnvelope(f"{what} is nested too deeply") from None


def decode_envelope(body: bytes | memoryview) -> Envelope:
    """The call's arguments; raises :class:`BadEnvelope` saying what is wrong with ``body``."""
    envelope = decode_json(_decode_envelope, body, "request body", USAGE)
    if envelope.data is None and envelope.parameters is None:
        raise BadEnvelope(f"no arguments given. {USAGE}")
    if envelope.data is not None and envelope.parameters is not None:
        raise BadEnvelope('give either "data" or "parameters", not both')
    # Nesting needs at least one bracket per level: most bodies are cleared by counting them
    # (a worker's body is a view of its frame, which has no count(): a copy costs about as much).
    text = body if isinstance(body, bytes) else bytes(body)
    if text.count(b"[") + text.count(b"{") > MAX_NESTING and nested_deeper_than(
            MAX_NESTING - 1, envelope.data if envelope.parameters is None else envelope.parameters):
        raise BadEnvelope(f"the request body is nested more than {MAX_NESTING} levels deep; "
                          "send flatter arguments")
    return envelope


def nested_deeper_than(limit: int, value: Any) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects more than ``limit`` levels
    (``value`` itself, when it is one, is level 1). One pass, no recursion."""
    stack = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if type(container) is dict:
            container = container.values()
        elif type(container) is not list:
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in container
                     if type(item) is list or type(item) is dict)
    return False


# ---------------------------------------------------------------- pool status channel


class PoolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a supervisor needs to load one model version and run its workers."""

    model: str
    version: int
    version_id: str
    language: Literal["python", "r"]
    script: str  # absolute path
    function: str
    workdir: str = ""  # the working directory (the version's snapshot); "": the script's
    python: str = ""  # the interpreter of the version's environment; "": the gateway's
    r_libs: list[str] = []  # R library directories put first on .libPaths()
    workers: int
    preload: bool = True
    slots: int = 32
    batch_max_size: int = 0  # > 1: adaptive batching (see workers.batching)
    batch_max_wait_ms: float = 0.0
    env: dict[str, str] = {}
    connect: str  # the gateway's ZeroMQ address for workers
    log_json: bool = True
    # ZeroMQ CURVE, for pools that join over TCP (Z85 keys; the secret travels on stdin only)
    curve_server_key: str = ""
    curve_public_key: str = ""
    curve_secret_key: str = ""
    # the pool's own secret, sent back in Ready (local pools; on stdin only, like the keys)
    pool_secret: str = ""


class WorkerStarted(msgspec.Struct, tag="started", frozen=True):
    pid: int


class WorkerExited(msgspec.Struct, tag="exited", frozen=True):
    pid: int
    code: int  # exit status; negative: killed by that signal


class LoadFailed(msgspec.Struct, tag="load_failed", frozen=True):
    """The script could not be run or the function is missing: the version cannot be served."""

    reason: str


PoolEvent = Union[WorkerStarted, WorkerExited, LoadFailed]

encode_event = msgspec.json.Encoder().encode
decode_event = msgspec.json.Decoder(PoolEvent).decode
encode_spec = msgspec.msgpack.Encoder().encode
decode_spec = msgspec.msgpack.Decoder(PoolSpec).decode


def bytes_elements(raw: bytes | memoryview, count: int, where: str) -> list[str]:
    """The ``count`` elements of a V2 BYTES tensor sent as binary data (Triton's binary
    extension: each a 4-byte little-endian length, then its UTF-8 bytes). Both the gateway
    (lists) and a ``tensors: numpy`` worker read them; raises :class:`BadEnvelope`."""
    items, at = [], 0
    try:
        while at < len(raw):
            (n,) = struct.unpack_from("<I", raw, at)
            if at + 4 + n > len(raw):
                raise struct.error
            items.append(bytes(raw[at + 4:at + 4 + n]).decode())
            at += 4 + n
    except struct.error:
        raise BadEnvelope(f"{where}: malformed BYTES binary data") from None
    except UnicodeDecodeError:
        raise BadEnvelope(f"{where}: BYTES elements must be UTF-8 text") from None
    if len(items) != count:
        raise BadEnvelope(f"{where}: {len(items)} BYTES elements for {count} in its shape")
    return items
