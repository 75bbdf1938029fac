"""The supervisor: loads one model version once, then forks and supervises its workers.

Started by the gateway as ``python -m workers.supervisor`` with a :class:`~workers.wire.PoolSpec`
on stdin, a clean environment (the model's ``env`` and what Python needs, none of the gateway's
variables) and its own session, so a Ctrl-C in the gateway's terminal is the gateway's to handle.
``modelgate worker`` runs the same :func:`run_supervisor` in its own process, for a remote pool.

With ``preload`` (the default) the script runs here, before the fork: every worker shares the
loaded model's pages copy-on-write, and a replacement worker starts in milliseconds because
nothing is loaded again. ``preload: false`` runs the script in each child instead, for scripts
that are not fork-safe.

The loop follows gunicorn's arbiter: signal handlers only wake it; it reaps dead children,
reports them, and starts replacements with exponential backoff. Every event goes to the gateway
as a JSON line on the status pipe (the original stdout; user prints go to stderr).
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import signal
import sys
import time
from typing import IO, Any

import msgspec
import multiprocess
import structlog
import structlog.tracebacks
from multiprocess.connection import wait

from workers.calls import RUNNING
from workers.errors import LoadError
from workers.runners import Runner, load_runner
from workers.wire import (
    LoadFailed,
    PoolEvent,
    PoolSpec,
    WorkerExited,
    WorkerStarted,
    decode_spec,
    encode_event,
)
from workers.worker import serve

log = structlog.get_logger("modelgate.pool")

EXIT_LOAD_FAILED = 3
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 5.0  # a worker that lived this long resets the backoff

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies: no orphans, ever."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def keep_private() -> None:
    """Not dumpable, and so neither are the workers forked from here: the pools of a gateway
    share one user (``gateway.worker_user``), and another model's code must not read this
    model's memory or ``/proc/<pid>/environ`` (its ``env``) or attach a debugger to it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def configure_logging(json_logs: bool, spec: PoolSpec | None = None) -> None:
    """Log lines go to stderr. With ``spec`` (a pool's processes), every line names the model,
    the version and the request being run (None between calls), and so does everything the
    user's code writes: ``print`` and writes to ``sys.stdout``/``sys.stderr`` become ``print``
    lines, Python ``logging`` records ``log`` lines and warnings ``warning`` lines."""
    renderer: Any = (structlog.processors.JSONRenderer() if json_logs
                     else structlog.dev.ConsoleRenderer())
    context: list[Any] = [] if spec is None else [_pool_context(spec.model, spec.version)]
    structlog.configure(
        processors=[
            *context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
            if json_logs else structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    if spec is not None:
        _capture_user_output()


def _pool_context(model: str, version: int) -> Any:
    def add(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("model", model)
        event.setdefault("version", version)
        event.setdefault("request_id", RUNNING.request_id)
        return event

    return add


class _LinesToLog(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` whose complete lines become log lines."""

    def __init__(self, stream: str, fd: int) -> None:
        self.stream, self._fd, self._partial = stream, fd, ""
        self._log = structlog.get_logger("modelgate.user")

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._log.info("print", stream=self.stream, text=line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._log.info("print", stream=self.stream, text=line)


class _RecordsToLog(logging.Handler):
    """Python ``logging`` records (and, through it, warnings) as log lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in user code must not kill the worker
            message = str(record.msg)
        event = "warning" if record.name == "py.warnings" else "log"
        structlog.get_logger("modelgate.user").log(
            record.levelno, event, logger=record.name, message=message.rstrip("\n"))


def _capture_user_output() -> None:
    sys.stdout = _LinesToLog("stdout", 1)
    sys.stderr = _LinesToLog("stderr", 2)
    logging.basicConfig(handlers=[_RecordsToLog()], level=logging.INFO, force=True)
    logging.captureWarnings(True)


class StatusPipe:
    """The gateway's view of this pool: one JSON line per event; small writes are atomic."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def send(self, event: PoolEvent) -> None:
        try:
            self._stream.write(encode_event(event) + b"\n")
        except BrokenPipeError:  # the gateway is gone; PDEATHSIG will follow
            pass


def _worker_main(spec: PoolSpec, runner: Runner | None, status: StatusPipe) -> None:
    """A worker's life after the fork (see :class:`Supervisor`)."""
    die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if runner is None:
        try:
            runner = load_runner(spec)
        except LoadError as exc:
            status.send(LoadFailed(str(exc)))
            os._exit(EXIT_LOAD_FAILED)
    serve(spec, runner)


class Supervisor:
    """Keeps ``spec.workers`` worker processes alive until SIGTERM or SIGINT.

    The contract of the fork, as in gunicorn's ``workers/base.py``:

    * **Before the fork**, here, once: the runner is loaded when ``spec.preload`` (the user's
      script runs; see :class:`~workers.runners.Runner`), signal handlers are installed that
      only set a flag and wake the loop, and nothing is connected: no socket, no thread.
    * **After the fork**, in each child (:func:`_worker_main`): it asks Linux to kill it with
      this process, puts SIGTERM and SIGHUP back to their defaults, loads the runner itself
      when it was not preloaded (a failure is reported as ``LoadFailed`` and exits with
      ``EXIT_LOAD_FAILED``), then opens its own connection to the gateway and serves
      (:func:`workers.worker.serve`) until the gateway says stop.
    * **What this process expects of a worker**: that it lives as long as it can serve and
      exits when it cannot. Nothing else goes between the two: the worker's liveness towards
      the gateway is its heartbeat, so a worker stuck in a long call is the gateway's to kill
      (by pid, at its call's timeout). Every exit is reported (``WorkerExited`` with the exit
      status) and the worker replaced, with backoff while workers die young.
    * **What the gateway expects of this process**: ``WorkerStarted``, ``WorkerExited`` and
      ``LoadFailed`` lines on the status pipe as they happen, and on SIGTERM workers stopped
      (SIGTERM, then SIGKILL after 5 s) before it exits.
    """

    def __init__(self, spec: PoolSpec, status: StatusPipe) -> None:
        self.spec = spec
        self.status = status
        self.runner: Runner | None = None
        self.children: dict[int, Any] = {}  # sentinel -> Process
        self.started_at: dict[int, float] = {}
        self.backoff = 0.0
        self.stopping = False
        self._context = multiprocess.get_context("fork")
        self._wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True

    def preload(self) -> None:
        self.runner = load_runner(self.spec)

    def spawn(self) -> None:
        proc = self._context.Process(
            target=_worker_main, args=(self.spec, self.runner, self.status), daemon=False
        )
        proc.start()
        self.children[proc.sentinel] = proc
        self.started_at[proc.sentinel] = time.monotonic()
        self.status.send(WorkerStarted(proc.pid))

    def run(self) -> int:
        for _ in range(self.spec.workers):
            self.spawn()
        while not self.stopping:
            timeout = None
            if len(self.children) < self.spec.workers:
                timeout = 0.0
            ready = wait([*self.children, self._wake_r], timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            self._reap([s for s in ready if s in self.children])
            if self.stopping:
                break
            if len(self.children) < self.spec.workers:
                self._respawn_after_backoff()
        return self._shutdown()

    def _reap(self, sentinels: list[int]) -> None:
        for sentinel in sentinels:
            proc = self.children.pop(sentinel)
            lived = time.monotonic() - self.started_at.pop(sentinel)
            proc.join()
            code = proc.exitcode if proc.exitcode is not None else -1
            self.status.send(WorkerExited(proc.pid, code))
            if lived >= STABLE_AFTER_S:
                self.backoff = 0.0
            else:
                self.backoff = min(BACKOFF_MAX_S, max(BACKOFF_FIRST_S, self.backoff * 2))
            if not self.stopping:
                log.warning("worker_exited", model=self.spec.model, version=self.spec.version,
                            pid=proc.pid, code=code, restart_in_s=self.backoff)

    def _respawn_after_backoff(self) -> None:
        deadline = time.monotonic() + self.backoff
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            ready = wait([*self.children, self._wake_r], left)
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            self._reap([s for s in ready if s in self.children])
        while not self.stopping and len(self.children) < self.spec.workers:
            self.spawn()

    def _shutdown(self) -> int:
        for proc in self.children.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self.children.values():
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        return 0


class StatusLog(StatusPipe):
    """For a pool with no gateway process above it (``modelgate worker``): events are logged."""

    def __init__(self) -> None:
        pass

    def send(self, event: PoolEvent) -> None:
        log.info("pool_event", event_type=type(event).__name__, **msgspec.structs.asdict(event))


def main() -> int:
    spec = decode_spec(sys.stdin.buffer.read())
    status = StatusPipe(os.fdopen(os.dup(1), "wb", buffering=0))
    os.dup2(2, 1)  # user prints go to stderr, never into the status pipe
    sys.stdout = sys.stderr
    die_with_parent()
    keep_private()
    configure_logging(spec.log_json, spec)
    return run_supervisor(spec, status)


def run_supervisor(spec: PoolSpec, status: StatusPipe) -> int:
    """Load (with preload) and keep ``spec.workers`` workers running until SIGTERM/SIGINT."""
    parent = Supervisor(spec, status)
    if spec.preload or spec.workers == 0:
        try:
            parent.preload()
        except LoadError as exc:
            status.send(LoadFailed(str(exc)))
            log.error("load_failed", model=spec.model, version=spec.version, reason=str(exc))
            return EXIT_LOAD_FAILED
    if spec.workers == 0:  # a load check (`modelgate check`): the script ran, nothing to serve
        return 0
    return parent.run()


if __name__ == "__main__":
    sys.exit(main())
