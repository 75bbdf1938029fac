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
import sys
from pathlib import Path

from gateway import audit
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
        return 0
    for snapshot in doomed:
        store.remove(snapshot)
    freed = store.prune()
    summary = (f"{verb} {len(doomed)} snapshot(s) and {freed / 1e6:.1f} MB of files no "
               f"snapshot holds; kept {len(store.snapshots())}")
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
