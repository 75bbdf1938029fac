"""The command line's side of a running gateway: edit its file, audit, make it reload.

``modelgate promote`` and friends edit the deployment file (:mod:`gateway.edits`), append
the action to the audit log, then make the gateway serving that file reload it: by SIGHUP to
the process named in ``<config>.pid`` (which the gateway writes while it serves the file), or
with ``--url`` through its admin API. With SIGHUP, the outcome is the gateway's ``reload`` or
``reload_failed`` audit line for the very content written (matched by its SHA-256).

A symlinked config is edited where the link points (the link stays a link), and its pid file
and audit log are beside that real file: the CLI and the gateway both resolve the path to find
them. The gateway itself re-reads the path it was given at each reload, so a link pointed
elsewhere (e.g. a Kubernetes ConfigMap update) is followed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from gateway import audit, edits
from gateway.api import ErrorBody, ReloadReport

PathLike = str | os.PathLike[str]


def run_action(command: str, config: PathLike, url: str | None, wait: float,
               make_edit: Callable[[Path], edits.Edit]) -> int:
    """Edit the file (validated, atomic), audit the action, then make the gateway reload;
    ``make_edit`` gets the audit log's path (rollback reads it). Returns the exit status."""
    return act(command, config, url, wait, make_edit)[0]


def act(command: str, config: PathLike, url: str | None, wait: float,
        make_edit: Callable[[Path], edits.Edit]) -> tuple[int, edits.Change | None]:
    """:func:`run_action`, also returning the change made (None: nothing was changed)."""
    path = Path(config).resolve()  # a symlink: the file it names is read, edited, reloaded
    try:
        applied = edits.apply(path, make_edit, os_user())
    except edits.NothingToDo as exc:
        print(f"{exc}; the file is unchanged")
        return 0, None
    except edits.EditError as exc:
        print(f"modelgate {command}: {exc}", file=sys.stderr)
        return 1, None
    print(f"{path}: {applied.change.summary()}")
    if applied.audit_problem is not None:
        print(f"modelgate: warning: {applied.audit_problem} (rollback relies on it)",
              file=sys.stderr)
    return _reload(path, applied.audit_log, applied.digest, url, wait), applied.change


def reload(config: PathLike, url: str | None, wait: float) -> int:
    """``modelgate reload``: the gateway serving ``config`` reloads it as it is now."""
    path = Path(config)
    try:
        text = _read(path)
        audit_log = edits.audit_log_of(edits.load_document(text, str(path)), path)
    except edits.EditError as exc:
        print(f"modelgate reload: {exc}", file=sys.stderr)
        return 1
    return _reload(path, audit_log, audit.config_sha256(text), url, wait)


def _reload(path: Path, audit_log: Path, digest: str, url: str | None, wait: float) -> int:
    if url:
        return _reload_through_api(url, wait, digest)
    offset = audit.size(audit_log)
    try:
        pid = signal_reload(path)
    except PermissionError:
        print(f"modelgate: not allowed to signal the gateway serving {path}; run this as its "
              "user, or reload through its admin API (--url and MODELGATE_TOKEN)",
              file=sys.stderr)
        return 1
    if pid is None:
        print(f"no gateway is serving {path} (no live {pid_file(path).name}); the change "
              "takes effect when one starts")
        return 0
    if wait <= 0:
        print(f"sent SIGHUP to the gateway (pid {pid})")
        return 0
    line = audit.wait_for_reload(audit_log, offset, digest, wait)
    if line is None:
        print(f"modelgate: the gateway (pid {pid}) did not report a reload of this file within "
              f"{wait:g} s; see its log or {audit_log}", file=sys.stderr)
        return 1
    if line.action == "reload_failed":
        print(f"modelgate: the file is changed but the gateway (pid {pid}) kept serving its "
              f"old config:\n{line.details}\nfix the file, then run `modelgate reload "
              f"{path}`", file=sys.stderr)
        return 1
    print(f"gateway (pid {pid}) reloaded: {line.details}")
    return 0


class ApiError(Exception):
    """The admin API refused, or could not be reached; the message says which and why."""


def admin_call(url: str, path: str, body: bytes = b"", content_type: str = "application/json",
               timeout: float = 130.0) -> bytes:
    """POST ``body`` to the admin API at ``url`` with the admin token in MODELGATE_TOKEN;
    the answer's body, or :class:`ApiError` with the gateway's own message."""
    import urllib.error
    import urllib.request

    token = os.environ.get("MODELGATE_TOKEN")
    if not token:
        raise ApiError(f"{path} needs an admin token in the MODELGATE_TOKEN environment "
                       "variable")
    request = urllib.request.Request(
        f"{url.rstrip('/')}{path}", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = msgspec.json.decode(exc.read(), type=ErrorBody).error.message
        except msgspec.DecodeError:
            message = f"HTTP {exc.code}"
        raise ApiError(f"the gateway at {url} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"cannot reach the gateway at {url}: {exc}") from None


def _reload_through_api(url: str, wait: float, digest: str) -> int:
    try:
        report = msgspec.json.decode(admin_call(url, "/admin/reload",
                                                timeout=max(wait, 1.0) + 10),
                                     type=ReloadReport)
    except ApiError as exc:
        print(f"modelgate: the gateway did not reload: {exc}", file=sys.stderr)
        return 1
    changes = "; ".join(f"{what}: {', '.join(labels)}" for what, labels in (
        ("started", report.started), ("stopped", report.stopped)) if labels)
    production = ", ".join(f"{m} v{n}" for m, n in report.production.items())
    print(f"gateway at {url} reloaded: {changes or 'no pool changed'}; production: "
          f"{production}")
    if report.needs_restart:
        print(f"modelgate: warning: needs a restart: {', '.join(report.needs_restart)} (the "
              "gateway keeps its running values of these until it restarts)", file=sys.stderr)
    if report.config_sha256 != digest:
        print(f"modelgate: warning: the gateway at {url} reloaded {report.config}, whose "
              "content differs from this file; is it serving another copy?", file=sys.stderr)
    return 0


def os_user() -> str:
    """Who ran the command, for the audit log (a container user may have no passwd entry)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise edits.EditError(f"{path}: cannot read the file: {exc.strerror}") from None


# ------------------------------------------------------------------ the pid file

def pid_file(config: PathLike) -> Path:
    return Path(f"{Path(config).resolve()}.pid")


def write_pid_file(config: PathLike) -> Path:
    """Claim the config for this process; raises OSError (e.g. a read-only directory)."""
    path = pid_file(config)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(f"{os.getpid()}\n")
    os.replace(temporary, path)
    return path


def remove_pid_file(path: Path) -> None:
    """Remove the file if it still names this process (another gateway may have taken over)."""
    if _read_pid(path) == os.getpid():
        path.unlink(missing_ok=True)


def serving_pid(config: PathLike) -> int | None:
    """The gateway serving ``config``, if one is (not this process): the process named in
    the pid file must still be a modelgate gateway, since a stale file's number may be any
    process's by now (or, in a restarted container, this one's)."""
    pid = _read_pid(pid_file(config))
    if pid is None or pid == os.getpid() or not _is_gateway(pid):
        return None
    return pid


def signal_reload(config: PathLike) -> int | None:
    """SIGHUP to the gateway serving ``config``: its pid, or None when none is."""
    pid = serving_pid(config)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_gateway(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: the SIGHUP itself will say so
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc on this system: trust the file
    except OSError:
        return False
    return b"serve" in argv and any(b"modelgate" in a or b"gateway.cli" in a for a in argv)
