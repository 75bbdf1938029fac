"""``modelgate gc``: remove the snapshots nothing refers to any more.

A snapshot stays while any of these holds: a version in the config names it (published or
not: ``republish`` needs it); an audit line within the retention window
(``gateway.gc_keep_days``) names it (a rollback target that was edited away recently); it was
taken within that window (a publish in progress); a process runs in it (a gateway still
serving an older config after a failed reload). Then the file contents no snapshot holds are
removed. The action is audited.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import time
from pathlib import Path

from gateway import audit, environments
from gateway.cli.control import os_user
from gateway.config import ConfigError, Deployment, load
from gateway.snapshots import Store, store_of


def run(config: str, keep_days: float | None = None, dry_run: bool = False) -> int:
    try:
        deployment = load(config, check_scripts=False, check_secrets=False)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    days = deployment.gateway.gc_keep_days if keep_days is None else keep_days
    store = store_of(deployment)
    doomed = unreferenced(deployment, store, days)
    verb = "would remove" if dry_run else "removed"
    if dry_run:
        print(f"{verb} {len(doomed)} snapshot(s): {', '.join(doomed) or 'none'}")
        print(f"{verb} environments: "
              f"{', '.join(map(str, unused_environments(deployment, days))) or 'none'}")
        return 0
    for snapshot in doomed:
        store.remove(snapshot)
    freed = store.prune()
    venvs = unused_environments(deployment, days)
    for venv in venvs:
        shutil.rmtree(venv, ignore_errors=True)
    summary = (f"{verb} {len(doomed)} snapshot(s), {freed / 1e6:.1f} MB of files no "
               f"snapshot holds and {len(venvs)} environment(s); kept "
               f"{len(store.snapshots())} snapshot(s)")
    print(f"{store.root}: {summary}")
    for snapshot in doomed:
        print(f"  {snapshot}")
    try:
        audit.append(audit.audit_path(deployment), audit.AuditLine(
            time=audit.now(), actor=os_user(), action="gc", details=summary))
    except OSError as exc:
        print(f"modelgate: warning: cannot append to the audit log: {exc.strerror}",
              file=sys.stderr)
    return 0


def unreferenced(deployment: Deployment, store: Store, keep_days: float) -> list[str]:
    """The snapshots of ``store`` that may go (see the module's docstring)."""
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=keep_days)
    kept = {v.snapshot for m in deployment.models.values() for v in m.versions.values()}
    kept |= {line.snapshot for line in audit.read_from(audit.audit_path(deployment))
             if line.snapshot and datetime.datetime.fromisoformat(line.time) >= since}
    kept |= in_use(store)
    recent = since.timestamp()
    return [s for s in store.snapshots() if s not in kept
            and (store.manifests / f"{s.removeprefix('sha256:')}.json").stat().st_mtime < recent]


def unused_environments(deployment: Deployment, keep_days: float) -> list[Path]:
    """Environments no version of the config runs in, built before the retention window, and
    that no process runs under."""
    root = deployment.state_path / "environments"
    if not root.is_dir():
        return []
    kept = {environments.built(deployment, m, v) for m in deployment.models.values()
            for v in m.versions.values()}
    running = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            program = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, UnicodeDecodeError):
            continue
        if program.startswith(f"{root}{os.sep}"):
            running.add(root / Path(program).relative_to(root).parts[0])
    before = time.time() - keep_days * 86400
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("locks",)
                  and not p.name.startswith(".") and p not in kept and p not in running
                  and p.stat().st_mtime < before)


def in_use(store: Store) -> set[str]:
    """Snapshots some process of this host has as its working directory."""
    trees = str(store.trees.resolve()) + os.sep
    used = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue  # gone, or another user's (whose pools do not run in our store)
        if cwd.startswith(trees):
            used.add("sha256:" + cwd[len(trees):].split(os.sep)[0])
    return used
