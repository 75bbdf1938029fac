"""``modelgate check``: the config is valid, and every published script really loads.

The static checks of :mod:`gateway.config` cannot see a script that raises at import or an R
file that fails to source, so each version is also loaded once in a real pool process (with the
model's environment, exactly as when serving) that exits right after loading.
"""

from __future__ import annotations

import asyncio

import msgspec

from gateway.config import Deployment, Environment
from gateway.environments import BuildError, build
from gateway.serving import worker_user
from gateway.serving.supervisor_process import spawn_supervisor
from gateway.snapshots import script_in_snapshot, store_of
from workers.wire import LoadFailed, PoolSpec, decode_event


async def load_problems(deployment: Deployment, timeout_s: float = 300.0) -> list[str]:
    """``models.M.versions.N: ...`` for every published version whose script fails to load
    (loaded as the pools would be, by ``gateway.worker_user`` when this is root)."""
    try:
        user = worker_user.resolve(deployment.gateway.worker_user)
    except worker_user.WorkerUserError as exc:
        return [str(exc)]
    checks = [
        _load_one(deployment, name, n, timeout_s, user)
        for name, model in deployment.models.items() if not model.unpublished
        for n, version in model.versions.items() if not version.unpublished
    ]
    return [problem for problem in await asyncio.gather(*checks) if problem]


async def _load_one(deployment: Deployment, name: str, n: int, timeout_s: float,
                    user: worker_user.WorkerUser | None) -> str | None:
    model = deployment.models[name]
    version = model.versions[n]
    script, workdir, python, r_libs = str(deployment.script_path(version)), "", "", []
    if version.snapshot is not None:  # what will be served: the snapshot, its environment
        tree = store_of(deployment).tree(version.snapshot)
        workdir, script = str(tree), str(tree / script_in_snapshot(deployment, model, version))
        try:
            environment = build(deployment, model, version)
        except BuildError as exc:
            return f"models.{name}.versions.{n}.environment: {exc}"
        python = environment.python if environment is not None else ""
        r_libs = [str(tree / lib) for lib in (version.environment or Environment()).r_libs]
    spec = PoolSpec(model=name, version=n, version_id="check", language=version.language,
                    script=script, workdir=workdir, python=python, r_libs=r_libs,
                    function=version.function,
                    workers=0, env=dict(model.env), connect="", log_json=True)
    if user is not None:
        try:
            await asyncio.to_thread(worker_user.check_access, user, [spec])
        except worker_user.WorkerUserError as exc:
            return f"models.{name}.versions.{n}: {exc}"
    process = await spawn_supervisor(spec, stderr=asyncio.subprocess.DEVNULL, user=user)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"models.{name}.versions.{n}.script: loading took more than {timeout_s:g} s"
    for line in out.splitlines():
        try:
            event = decode_event(line)
        except msgspec.DecodeError:
            continue
        if isinstance(event, LoadFailed):
            return f"models.{name}.versions.{n}.script: {event.reason.strip()}"
    if process.returncode != 0:
        return f"models.{name}.versions.{n}.script: the loader exited with {process.returncode}"
    return None
