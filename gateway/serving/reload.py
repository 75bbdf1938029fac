"""Hot reload of the served config (SPEC §5, §6): what SIGHUP and ``POST /admin/reload`` run.

A reload reads the file the gateway serves, validates it, and hands it to
:meth:`Service.reload` (new pools ready before the routing table is swapped, unchanged pools
kept warm). An invalid file, or new pools that cannot come up, change nothing: the old config
keeps serving, and the failure is logged and audited as ``reload_failed``. SIGHUP and
``POST /admin/reload`` take the same path, one reload at a time. Gateway settings read only at
start (:data:`START_ONLY`) keep their running values; a file that changes them is reloaded,
and the report, the log and the audit line say which need a restart.

Its two errors: 400 ``bad_config`` (the file is not valid: the message lists every problem) and
500 ``reload_failed`` (the new pools could not start: the message names the version and its
reason).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import structlog

from gateway import audit, edits
from gateway.api import ReloadReport
from gateway.config import ConfigError, Deployment, load_bytes
from gateway.errors import ModelgateError
from gateway.serving.service import ReloadError, Service
from gateway.snapshots import prepare

log = structlog.get_logger("modelgate.admin")

# Read once at start: the socket, aiohttp's body limit, the routes' request log, the HTTP
# drain, the remote workers' socket and keys, the async predictions' database, the
# connection limits.
START_ONLY = ("listen", "max_body_bytes", "access_log", "drain_timeout_s", "workers_listen",
              "workers_curve", "async_db", "header_timeout_s", "body_timeout_s",
              "idle_timeout_s", "max_connections", "worker_log_lines", "worker_user")


class BadConfig(ModelgateError):
    status, type = 400, "bad_config"


class ReloadFailed(ModelgateError):
    status, type = 500, "reload_failed"


class Reloader:
    """Reloads the service from its config file; every outcome goes to the audit log."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.published = audit.Published()  # who published each version (the versions list)
        self._one_at_a_time = asyncio.Lock()

    async def reload(self, actor: str) -> ReloadReport:
        """Serve what the file now says; raise :class:`BadConfig` or :class:`ReloadFailed`
        (after auditing them) when it cannot, the old config still serving."""
        async with self._one_at_a_time:
            running = self.service.deployment
            before = production_versions(running)
            digest = ""
            try:
                data, digest = await asyncio.to_thread(read_file, running.path)
                deployment = await asyncio.to_thread(load_bytes, data, running.path)
                deployment, needs_restart = _keep_start_only(deployment, running)
                deployment, taken = await asyncio.to_thread(prepare, deployment)
                changes = await self.service.reload(deployment)
            except (ConfigError, ReloadError) as exc:
                await self._failed(actor, str(exc), digest)
                if isinstance(exc, ConfigError):
                    raise BadConfig(f"the config was not reloaded (the old one keeps "
                                    f"serving); fix the file and reload again:\n{exc}") from None
                raise ReloadFailed(f"the new pools could not start, so the old config keeps "
                                   f"serving: {exc}") from None
            except Exception as exc:  # a bug: still audited, so the CLI hears of it at once
                serving = ("the old config keeps serving" if self.service.deployment is running
                           else "the new config is serving")
                await self._failed(actor, f"unexpected error ({serving}): "
                                          f"{type(exc).__name__}: {exc}", digest, crashed=True)
                raise ReloadFailed(f"the reload failed with an unexpected error and {serving}: "
                                   f"{type(exc).__name__}: {exc}; see the gateway's log") from None
            after = production_versions(deployment)
            log.info("reloaded", actor=actor, config=running.path, **changes)
            if taken:
                await self._record(deployment, taken)
            details = _describe(changes, before, after)
            if needs_restart:
                log.warning("reload_needs_restart", settings=needs_restart,
                            hint="the running values stay until the gateway is restarted")
                details += f"; needs a restart: {', '.join(needs_restart)}"
            for line in _reload_lines(actor, before, after, details, digest):
                await record(self.service, line)
            return ReloadReport(config=running.path, config_sha256=digest, production=after,
                                needs_restart=needs_restart, **changes)

    async def _record(self, deployment: Deployment, taken: dict[tuple[str, int], str]) -> None:
        """The snapshots taken of versions that had none go into the file."""
        log.info("snapshots_taken", versions=[f"{m} v{n}: {s}" for (m, n), s in taken.items()])
        try:
            await asyncio.to_thread(edits.record_snapshots, deployment, taken)
        except Exception as exc:  # e.g. a read-only file: served now, but not recorded
            log.warning("snapshots_not_recorded", config=deployment.path, error=str(exc),
                        hint="record them with `modelgate publish`, or make the file writable")

    async def _failed(self, actor: str, reason: str, digest: str, crashed: bool = False) -> None:
        """``crashed``: called from an ``except`` block of an unexpected error, whose
        traceback goes to the log."""
        log.error("reload_failed", actor=actor, config=self.service.deployment.path,
                  error=reason, exc_info=crashed)
        await record(self.service, audit.AuditLine(
            time=audit.now(), actor=actor, action="reload_failed", result="failed",
            details=reason, config_sha256=digest or None))


def _describe(changes: dict[str, list[str]], before: dict[str, int],
              after: dict[str, int]) -> str:
    """``started: m v3; kept: m v1; production: m v1 -> v3`` for the audit line."""
    moves = [f"{m} v{before[m]} -> v{v}" if m in before else f"{m} v{v}"
             for m, v in after.items() if before.get(m) != v]
    return "; ".join(f"{what}: {', '.join(labels)}" for what, labels in (
        *changes.items(), ("production", moves)) if labels) or "nothing changed"


def _reload_lines(actor: str, before: dict[str, int], after: dict[str, int], details: str,
                  digest: str) -> list[audit.AuditLine]:
    """The audit lines of a reload: one per model whose production version moved (with its
    versions before and after, as for the CLI's actions), or one line when none moved."""
    moved = [m for m in {**before, **after} if before.get(m) != after.get(m)]
    if not moved:
        return [audit.AuditLine(time=audit.now(), actor=actor, action="reload",
                                details=details, config_sha256=digest)]
    return [audit.AuditLine(time=audit.now(), actor=actor, action="reload", model=model,
                            before=before.get(model), after=after.get(model), details=details,
                            config_sha256=digest) for model in moved]


def read_file(path: str) -> tuple[bytes, str]:
    """The file's bytes and their digest (which names this content in the audit log)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    return data, audit.config_sha256(data)


def production_versions(deployment: Deployment) -> dict[str, int]:
    """Per model, the version ``labels/prod`` serves."""
    return {name: model.production for name, model in deployment.models.items()
            if model.production is not None}


def _keep_start_only(deployment: Deployment,
                     running: Deployment) -> tuple[Deployment, list[str]]:
    """``deployment`` with the running values of the :data:`START_ONLY` settings (so what the
    gateway does and says agree), and those the file changes, as ``gateway.NAME``."""
    kept = {name: getattr(running.gateway, name) for name in START_ONLY}
    changed = [f"gateway.{name}" for name, value in kept.items()
               if getattr(deployment.gateway, name) != value]
    settings = msgspec.structs.replace(deployment.gateway, **kept)
    return msgspec.structs.replace(deployment, gateway=settings), changed


async def record(service: Service, line: audit.AuditLine) -> None:
    """Append to the audit log off the event loop; a log that cannot be written is reported
    in the gateway's log and does not stop the gateway."""
    path = audit.audit_path(service.deployment)
    try:
        await asyncio.to_thread(audit.append, path, line)
    except OSError as exc:
        log.warning("audit_log_unwritable", path=str(path), error=exc.strerror,
                    action=line.action)
