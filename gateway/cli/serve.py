"""``modelgate serve``: run a deployment in the foreground until SIGTERM or Ctrl-C.

The CLI controls the process: aiohttp runs under ``AppRunner`` on the uvloop event loop,
start-up progress of the pools goes to stderr, and SIGTERM/SIGINT stop accepting connections,
let in-flight calls finish (bounded by ``gateway.drain_timeout_s``), then stop the pools.
SIGHUP reloads the config file (see :mod:`gateway.serving.reload`); ``<config>.pid`` names this
process while it serves, so ``modelgate promote`` can send it (a second ``serve`` of a file that
a live gateway serves is refused). Start and stop go to the audit log.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import shlex
import signal
import sys
from pathlib import Path
from typing import Literal

import msgspec
import structlog
import uvloop
from aiohttp import web

from gateway import __version__, edits, logs
from gateway.audit import AuditLine, config_sha256, now
from gateway.cli import control
from gateway.config import ConfigError, Deployment, load, seal_secrets
from gateway.environments import build_all
from gateway.serving.dispatcher import VersionPool
from gateway.serving.reload import BadConfig, Reloader, ReloadFailed, record
from gateway.serving.worker_user import WorkerUserError
from gateway.snapshots import prepare
from gateway.web.app import create_app
from gateway.web.connections import Limits
from gateway.web.fast import FastRunner
from gateway.web.keys import RELOADER, SERVICE

log = structlog.get_logger("modelgate.server")


def serve(config_path: str, listen: str | None = None, json_logs: bool | None = None,
          worker_user: str | None = None) -> int:
    """``listen`` (``--listen``) and ``worker_user`` (``--worker-user``) override
    ``gateway.listen`` and ``gateway.worker_user`` for this process only: the deployment keeps
    what the file says, so a reload compares file with file."""
    serving = control.serving_pid(config_path)
    if serving is not None:  # its pid file is not ours to take (or to remove on our way out)
        print(f"modelgate: {config_path} is already served by pid {serving}; stop it first",
              file=sys.stderr)
        return 1
    try:
        deployment, taken = prepare(load(config_path))
        build_all(deployment)  # before anything serves; the service finds them built
    except ConfigError as exc:
        print(f"modelgate: the config is not valid:\n{exc}", file=sys.stderr)
        return 1
    deployment = _record_snapshots(deployment, taken)
    if json_logs is None:
        json_logs = not sys.stdout.isatty()
    logs.configure(json_logs)
    protect_process(deployment)
    return uvloop.run(_serve(deployment, listen or deployment.gateway.listen, json_logs,
                             worker_user))


PR_SET_DUMPABLE = 4


def protect_process(deployment: Deployment) -> None:
    """Keep the gateway's secrets from other processes of its user (SPEC §5): not dumpable,
    so they cannot read its memory or ``/proc/<pid>/environ`` (nor attach a debugger), and
    the secret variables out of its environment, so no process it starts inherits them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    except (OSError, AttributeError) as exc:  # not Linux: say so, and serve
        log.warning("not_protected", reason=str(exc))
    sealed = seal_secrets(deployment)
    if sealed:
        log.info("secrets_sealed", variables=sealed)


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _record_snapshots(deployment: Deployment, taken: dict[tuple[str, int], str]) -> Deployment:
    """The first serve of a version without a snapshot took one: the file records it (and
    the deployment served is that file's new content)."""
    if not taken:
        return deployment
    for (name, n), snapshot in taken.items():
        print(f"  {name} v{n}: snapshot {snapshot}", file=sys.stderr)
    try:
        text = edits.record_snapshots(deployment, taken)
    except (OSError, edits.EditError) as exc:
        print(f"modelgate: warning: the snapshots are served but not recorded in "
              f"{deployment.path} ({exc}); the next start snapshots the projects again",
              file=sys.stderr)
        return deployment
    return deployment if text is None else msgspec.structs.replace(
        deployment, sha256=config_sha256(text))


class StartupProgress:
    """Shows pools coming up: one updating line on a terminal, a line per change otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, ready: int, total: int, pool: VersionPool) -> None:
        state = f"failed: {pool.failure}" if pool.failure and not pool.ready else (
            f"{len(pool.workers)}/{pool.expected_workers} workers")
        line = (f"  starting pools [{ready}/{total} workers ready]  "
                f"{pool.model} v{pool.version}: {state}")
        if self.tty:
            print(f"\r\033[K{line}", end="" if ready < total else "\n", file=sys.stderr,
                  flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


async def _serve(deployment: Deployment, listen: str, json_logs: bool,
                 worker_user: str | None) -> int:
    host, port = _split_listen(listen)
    print(f"modelgate {__version__}: starting {deployment.path}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    hangup = asyncio.Event()  # a SIGHUP during start-up is served once the pools are up
    loop.add_signal_handler(signal.SIGHUP, hangup.set)
    pid_path = _claim(deployment)
    try:
        return await _run(deployment, json_logs, host, port, hangup, worker_user)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        if pid_path is not None:
            control.remove_pid_file(pid_path)


def _claim(deployment: Deployment) -> Path | None:
    """Write ``<config>.pid``; without it (a read-only directory) the CLI cannot find this
    process, and reloads go through the admin API or a SIGHUP sent by hand."""
    try:
        return control.write_pid_file(deployment.path)
    except OSError as exc:
        log.warning("pid_file_unwritable", path=str(control.pid_file(deployment.path)),
                    error=exc.strerror, hint="reload with the admin API or SIGHUP instead")
        return None


async def _reload_on_hangup(reloader: Reloader, hangup: asyncio.Event) -> None:
    """Signals as events: SIGHUPs during a reload make one more reload after it."""
    while True:
        await hangup.wait()
        hangup.clear()
        try:
            await reloader.reload("gateway")
        except (BadConfig, ReloadFailed):
            pass  # logged and audited; the old config keeps serving
        except Exception:
            log.exception("reload_crashed")  # keep listening for the next SIGHUP


async def _run(deployment: Deployment, json_logs: bool, host: str, port: int,
               hangup: asyncio.Event, worker_user: str | None) -> int:
    app = create_app(deployment, StartupProgress(), json_logs, worker_user)
    settings = deployment.gateway
    runner = FastRunner(app, Limits(settings.header_timeout_s, settings.body_timeout_s,
                                    settings.max_connections),
                        settings.idle_timeout_s, access_log=None, handle_signals=False)
    try:
        await runner.setup()  # the pools start here
    except WorkerUserError as exc:
        print(f"modelgate: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    site = web.TCPSite(runner, host, port, backlog=2048,
                       shutdown_timeout=deployment.gateway.drain_timeout_s)
    try:
        await site.start()
    except OSError as exc:
        print(f"modelgate: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        await runner.cleanup()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    service = app[SERVICE]
    await record(service, _gateway_event("start", f"serving {deployment.path} on "
                                                        f"{host}:{port}", deployment))
    reloads = asyncio.create_task(_reload_on_hangup(app[RELOADER], hangup))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Everything allocated so far lives as long as the process: keep it out of the collector's
    # way, and collect the young generation less often (requests allocate many short-lived
    # objects; a collection pass per few hundred requests was measurable at high rates).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    _announce(deployment, host, port)
    log.info("serving", listen=f"{host}:{port}", config=deployment.path)
    await stop.wait()
    print("modelgate: stopping (finishing calls in flight)", file=sys.stderr, flush=True)
    log.info("stopping")
    reloads.cancel()
    await asyncio.gather(reloads, return_exceptions=True)
    await record(service, _gateway_event("stop", "SIGTERM or SIGINT: draining",
                                                service.deployment))
    await runner.cleanup()
    logs.drain()
    return 0


def _gateway_event(action: Literal["start", "stop"], details: str,
                   serving: Deployment) -> AuditLine:
    return AuditLine(time=now(), actor="gateway", action=action, details=details,
                     config_sha256=serving.sha256 or None)


def _announce(deployment: Deployment, host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    lines = [f"modelgate serving on {base}  (Ctrl-C to stop)"]
    for name, model in deployment.models.items():
        example = model.example if model.example is not None else {"parameters": []}
        auth = "" if model.access.public else ' -H "Authorization: Bearer $MODELGATE_TOKEN"'
        lines.append(
            f"  curl -s -X POST {base}/models/{name}/latest/model"
            f" -H 'Content-Type: application/json'{auth}"
            f" -d {shlex.quote(msgspec.json.encode(example).decode())}")
    print("\n".join(lines), file=sys.stderr, flush=True)
