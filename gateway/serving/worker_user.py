"""Who the pools run as, and with what environment: an unprivileged user when the gateway is
root (``gateway.worker_user``), and only the variables the model needs.

A model's code must not share the gateway's identity: as the same user it could signal the
gateway, read the files the gateway keeps (the async store, the audit log, key files) and, as
root, anything at all. A gateway started as root therefore runs every pool process, and so every
worker and the user's code, as ``nobody`` unless ``gateway.worker_user`` names another user
(``root`` keeps them root, on purpose only). A gateway that is not root cannot switch: its
workers run as itself, and the user it runs as is the boundary (the container image runs it as
a user of its own).

The pools reach the gateway through a socket in a directory only the gateway and that user's
group may enter (:func:`open_runtime_to`). Before a pool starts, :func:`check_access` runs the
worker runtime as that user, once per interpreter, and reads every version's snapshot: an
interpreter, a venv or a state directory that user cannot read is a refused start that names
the directory to open, not a pool that dies on every restart.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import msgspec
import structlog

from workers.wire import PoolSpec

log = structlog.get_logger("modelgate.pools")

DEFAULT = "nobody"
CHECK_TIMEOUT_S = 60.0

# Run as the worker user by each interpreter: import what a pool process imports, then read
# every path given (a directory must also be enterable). Prints the first path it cannot read.
_PROBE = """\
import os, sys
import workers.supervisor
for path in sys.argv[1:]:
    if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
        sys.exit("cannot read " + path)
"""


class WorkerUserError(Exception):
    """The pools cannot run as the configured user; the message says what to change."""


class WorkerUser(msgspec.Struct, frozen=True):
    name: str
    uid: int
    gid: int
    home: str
    setpriv: str  # util-linux's: it execs the command as this user (uvloop cannot switch)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user: its uid and gid, no supplementary groups, no way to gain
        privileges again (set-user-id programs do not elevate)."""
        return [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--no-new-privs", "--", *argv]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with this user's HOME, USER and LOGNAME (not the gateway's)."""
        return {**env, "HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def resolve(setting: str | None) -> WorkerUser | None:
    """The user pools run as, or None: as the gateway itself (it is not root, or the config
    says ``root``). Raises :class:`WorkerUserError` for a user that cannot be honoured."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        if setting is not None and setting != me:
            raise WorkerUserError(f"gateway.worker_user: `{setting}` needs the gateway to start "
                                  f"as root (it runs as `{me}`, and its workers with it); "
                                  f"remove the setting, or start the gateway as root")
        return None
    name = setting or DEFAULT
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise WorkerUserError(f"gateway.worker_user: there is no user `{name}` on this "
                              f"machine; create it (e.g. `useradd --system {name}`) or name "
                              f"another unprivileged user") from None
    if entry.pw_uid == 0:
        log.warning("workers_run_as_root", hint="gateway.worker_user is `root`: model code runs "
                    "with every privilege of the gateway")
        return None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise WorkerUserError("gateway.worker_user: switching the pools to an unprivileged user "
                              "takes `setpriv` (Debian's util-linux); install it")
    return WorkerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, setpriv)


# What user code may see of the gateway's environment: what Python and R need to run.
# Everything else (tokens, credentials of the gateway) stays out; the model's `env` is added.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME",
              "PYTHONPATH", "LD_LIBRARY_PATH", "R_HOME")


def worker_environment(model_env: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update(model_env)
    return env


_PR_SET_NO_NEW_PRIVS = 38


def become(user: WorkerUser) -> None:
    """This process becomes ``user`` for good, as :meth:`WorkerUser.command` does for a child:
    for ``modelgate worker``, whose pool runs in its own process (after it read its keys)."""
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def open_runtime_to(user: WorkerUser, directory: str, socket: str) -> None:
    """Let ``user``'s processes, and only the gateway's and theirs, reach the workers' socket:
    the directory is entered by its group, the socket written by it (joining a pool still
    takes that pool's own secret)."""
    os.chown(directory, -1, user.gid)
    os.chmod(directory, 0o710)
    os.chown(socket, -1, user.gid)
    os.chmod(socket, 0o660)


def check_access(user: WorkerUser, specs: Iterable[PoolSpec]) -> None:
    """Run the worker runtime as ``user`` with each interpreter the pools use, and read every
    script and snapshot; raises :class:`WorkerUserError` saying what to open to that user."""
    paths: dict[tuple[str, str], set[str]] = {}  # by interpreter and PYTHONPATH
    for spec in specs:
        env = worker_environment(spec.env)
        paths.setdefault((spec.python or sys.executable, env.get("PYTHONPATH", "")), set()).update(
            p for p in (spec.workdir, spec.script, *spec.r_libs) if p)
    for (python, pythonpath), needed in paths.items():
        problem = _probe(user, python, pythonpath, sorted(needed))
        if problem is not None:
            closed = _first_closed(user, [python, os.path.realpath(python), *sorted(needed),
                                          *(p for p in sys.path if p)])
            fix = (f"{closed} is closed to `{user.name}`: open it (`chmod o+x` lets it in, "
                   f"no more)" if closed else f"make what it names readable by `{user.name}`")
            raise WorkerUserError(
                f"gateway.worker_user: workers run as `{user.name}` (the gateway is root), who "
                f"cannot run them: {problem}. {fix}, or name another user in "
                f"gateway.worker_user")


def _probe(user: WorkerUser, python: str, pythonpath: str, paths: list[str]) -> str | None:
    """What ``user`` cannot do with ``python`` (importing as its pools do, with their
    ``PYTHONPATH``) and ``paths`` (None: nothing)."""
    try:
        done = subprocess.run(
            user.command([python, "-c", _PROBE, *paths]), capture_output=True, text=True,
            cwd="/", timeout=CHECK_TIMEOUT_S,
            env=user.environment(worker_environment(
                {"PYTHONPATH": pythonpath} if pythonpath else {})))
    except OSError as exc:
        return f"cannot run {user.setpriv}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return f"{python} did not finish importing the worker runtime in {CHECK_TIMEOUT_S:g} s"
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"{python} exited with code {done.returncode}"


def _first_closed(user: WorkerUser, paths: list[str]) -> str | None:
    """The first directory on the way to one of ``paths`` that ``user`` may not enter, by its
    mode bits (what the probe found, explained), with its mode and owner."""
    for path in paths:
        parts = Path(os.path.abspath(path)).parts
        for depth in range(1, len(parts)):
            directory = os.path.join(*parts[:depth])
            try:
                info = os.stat(directory)
            except OSError:
                break
            if info.st_uid == user.uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid == user.gid:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                owner = pwd.getpwuid(info.st_uid).pw_name if _known(info.st_uid) else info.st_uid
                return f"{directory} ({stat.filemode(info.st_mode)}, owner {owner})"
    return None


def _known(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
