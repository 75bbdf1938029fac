"""Publishing through the gateway (SPEC §6): what the admin HTTP API's version actions do.

Each action is the CLI's (:mod:`gateway.edits`: edit the file keeping its comments, validate,
replace it atomically, append the same audit line), followed by the gateway's own reload
(:class:`gateway.serving.reload.Reloader`), so the answer comes once the change is served.

A publish first unpacks the archive into a scratch directory of the state directory
(:mod:`gateway.archives`: nothing outside it is ever written, and a refused archive leaves
nothing), snapshots it into the store, and records the snapshot's tree as the version's
project. If the new version then fails to load, its entry is taken back out of the file (an
audit line ``publish``, ``result: failed``, says why), so the file keeps saying what is
served. Two publishes at once get distinct numbers: file edits are serialised by a lock on
the config's directory, and reloads one at a time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from gateway import archives, audit, edits, snapshots
from gateway.api import ActionResult, VersionInfo, VersionList
from gateway.config import Deployment, Model, Version, function_problem
from gateway.errors import (
    BadRequest,
    ModelgateError,
    NotFound,
    PayloadTooLarge,
)
from gateway.serving.reload import BadConfig, Reloader, ReloadFailed


def config_read_only(message: str) -> ModelgateError:
    return ModelgateError(message, 409, "config_read_only")


def conflict(message: str) -> ModelgateError:
    return ModelgateError(message, 409, "conflict")


def version_failed(message: str) -> ModelgateError:
    return ModelgateError(message, 422, "version_failed")


def bad_archive(message: str) -> ModelgateError:
    return ModelgateError(message, 400, "bad_archive")


def known_model(deployment: Deployment, model: str) -> None:
    if model not in deployment.models:
        known = ", ".join(deployment.models) or "none"
        raise NotFound(f"no model named `{model}` (models: {known}); the publishing API adds "
                       "versions to models of the config file")


def writable(deployment: Deployment) -> None:
    problem = edits.read_only_problem(deployment.path)
    if problem is not None:
        raise config_read_only(problem)


async def act(reloader: Reloader, model: str, make_edit: Callable[[Path], edits.Edit],
              actor: str) -> ActionResult:
    """Promote, roll back or unpublish: edit and audit as the CLI does, then reload."""
    deployment = reloader.service.deployment
    known_model(deployment, model)
    writable(deployment)
    try:
        applied = await asyncio.to_thread(edits.apply, deployment.path, make_edit, actor)
    except edits.NothingToDo as exc:
        production = deployment.models[model].production
        return ActionResult(model=model, action="none", version=None,
                            production_before=production, production=production,
                            changed=False, message=f"{exc}; the file is unchanged")
    except edits.EditError as exc:
        raise _refused(exc) from None
    await reloader.reload(actor)
    return _result(reloader, applied.change)


async def publish(reloader: Reloader, model: str, archive: IO[bytes], *, script: str,
                  function: str, language: str | None, workers: int | None,
                  actor: str) -> ActionResult:
    """Unpack, snapshot, add the next version, reload; the answer comes once it serves."""
    deployment = reloader.service.deployment
    known_model(deployment, model)
    writable(deployment)
    if language not in (None, "python", "r"):
        raise BadRequest(f"language must be python or r, not {language!r}")
    if workers is not None and not 0 <= workers <= 256:
        raise BadRequest(f"workers must be 0 to 256, not {workers}")
    _script_name_checked(script)
    if not function:
        raise BadRequest("function is required: the function the version calls")
    snapshot = await asyncio.to_thread(_snapshot_of_archive, deployment, archive,
                                       lambda root: _check_script(root, script, function,
                                                                  language))
    tree = snapshots.store_of(deployment).tree(snapshot)
    script_path = tree / script
    base = deployment.base_dir
    try:
        applied = await asyncio.to_thread(
            edits.apply, deployment.path,
            lambda _: edits.publish(model, script=os.path.relpath(script_path, base),
                                    function=function, language=language, workers=workers,
                                    config_path=deployment.path,
                                    project=os.path.relpath(tree, base), cwd=base,
                                    snapshot=snapshot), actor)
    except edits.EditError as exc:
        raise _refused(exc, publishing=True) from None
    n = applied.change.version
    assert n is not None
    try:
        await reloader.reload(actor)
    except (BadConfig, ReloadFailed) as exc:
        reason = (f"v{n} of `{model}` could not be served, so it was taken back out of the "
                  f"config: {exc.message}")
        try:
            await asyncio.to_thread(edits.apply, deployment.path,
                                    lambda _: edits.withdraw(model, n, snapshot), actor, reason)
        except (edits.EditError, edits.NothingToDo):
            pass
        raise version_failed(f"{reason}. Fix the project (the script must load and define "
                            "the function) and publish again") from None
    return _result(reloader, applied.change)


def versions(reloader: Reloader, model: str) -> VersionList:
    """Every version of ``model`` in the served config, with its state and origin."""
    deployment = reloader.service.deployment
    known_model(deployment, model)
    config = deployment.models[model]
    routes = reloader.service.table.models.get(model)
    published = reloader.published.of(audit.audit_path(deployment), model)
    listed = []
    for n, v in sorted(config.versions.items()):
        served = routes.versions.get(n) if routes is not None else None
        state: Literal["serving", "starting", "failing", "unpublished"] = "unpublished"
        if served is not None:
            pool = served.pool
            state = "serving" if pool.ready else ("failing" if pool.failure else "starting")
        origin = published.get(n)
        listed.append(VersionInfo(
            number=n, snapshot=v.snapshot, language=v.language,
            script=_script_name(deployment, config, v), function=v.function,
            created=origin.time if origin else None, actor=origin.actor if origin else None,
            state=state, production=config.production == n,
            model_version=served.pool.version_id if served is not None else None))
    return VersionList(model=model, production=config.production, versions=listed)


# ---------------------------------------------------------------------- the parts

def _snapshot_of_archive(deployment: Deployment, archive: IO[bytes],
                         check: Callable[[Path], None]) -> str:
    """Unpack into scratch, ``check`` the files, snapshot them; the scratch goes either way."""
    limit = deployment.gateway.snapshot_max_bytes
    scratch = deployment.state_path / "uploads" / uuid.uuid4().hex
    try:
        scratch.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ModelgateError(f"cannot write {scratch.parent}: {exc.strerror}; gateway.state_dir "
                             "must be a directory the gateway's user can write") from None
    try:
        try:
            archives.unpack(archive, scratch, limit)
        except archives.TooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except archives.ArchiveError as exc:
            raise bad_archive(f"the archive was refused, nothing was published: {exc}") from None
        check(scratch)
        try:
            return snapshots.store_of(deployment).take(scratch, limit)
        except snapshots.SnapshotError as exc:
            raise bad_archive(f"the archive was refused, nothing was published: "
                             f"{str(exc).replace(str(scratch), 'the archive')}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _script_name_checked(script: str) -> None:
    if not script or Path(script).is_absolute() or ".." in Path(script).parts:
        raise BadRequest(f"script must be a path inside the archive (such as src/predict.py), "
                         f"not {script!r}")


def _check_script(root: Path, script: str, function: str, language: str | None) -> None:
    """The script is in the archive and defines the function (the config's static look)."""
    path = root / script
    if not path.is_file():
        raise version_failed(f"the archive holds no file {script}; name the script by its path "
                            "in the archive (script=src/predict.py); nothing was published")
    lang: Literal["python", "r"] = (language if language in ("python", "r")  # type: ignore[assignment]
                                    else "r" if path.suffix in (".R", ".r") else "python")
    problem = function_problem(path, Version(language=lang, script=script, function=function))
    if problem is not None:
        raise version_failed(f"{problem}; nothing was published")


def _script_name(deployment: Deployment, model: Model, version: Version) -> str:
    if version.snapshot is None:
        return version.script
    return snapshots.script_in_snapshot(deployment, model, version)


def _refused(exc: edits.EditError, publishing: bool = False) -> ModelgateError:
    if isinstance(exc, edits.UnknownTarget):
        return NotFound(str(exc))
    if publishing:
        return version_failed(f"nothing was published: {exc}")
    return conflict(str(exc))


def _result(reloader: Reloader, change: edits.Change) -> ActionResult:
    routes = reloader.service.table.models.get(change.model)
    served = (routes.versions.get(change.version) if routes is not None
              and change.version is not None else None)
    return ActionResult(model=change.model, action=change.action, version=change.version,
                        production_before=change.before, production=change.after,
                        changed=True, message=change.summary(),
                        model_version=served.pool.version_id if served else None,
                        snapshot=change.snapshot)
