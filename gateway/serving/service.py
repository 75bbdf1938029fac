"""One running deployment: the dispatcher, a pool process per served version, the routing table.

``start`` brings every pool up and waits until each has its workers (or has failed, with the
reason). ``reload`` moves to a new deployment without dropping a call: pools whose version id is
unchanged keep their warm workers; new pools start and must be ready before the routing table
is swapped (in one assignment); only then are the pools no longer needed drained and stopped.
A reload whose new pools cannot load is abandoned and the old deployment keeps serving.

Every model call, whatever its route, goes through :meth:`Service.callable_model` (may this
caller call it?) and then :meth:`Service.submit` (pick the version, hand the body to its pool).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable

import msgspec
import structlog

from gateway.auth import TokenBook
from gateway.config import Deployment
from gateway.environments import Environment, build_all
from gateway.errors import ModelgateError, NotFound, Unauthorized
from gateway.serving.dispatcher import Dispatcher, VersionPool
from gateway.serving.remote import RemoteListener
from gateway.serving.routing import ModelRoutes, RoutingTable, Served, model_routes
from gateway.serving.supervisor_process import SupervisorProcess
from gateway.serving.worker_logs import WorkerLogs
from gateway.serving.worker_user import (
    WorkerUser,
    WorkerUserError,
    check_access,
    open_runtime_to,
    resolve,
)
from gateway.snapshots import prepare, script_in_snapshot, store_of
from gateway.versions import version_id
from workers.wire import PoolSpec, Reply

log = structlog.get_logger("modelgate.service")

Progress = Callable[[int, int, VersionPool], None]
PoolKey = tuple[str, int, str]


class ReloadError(Exception):
    """The new deployment could not be brought up; the old one is still serving."""


class Service:
    def __init__(self, deployment: Deployment, progress: Progress | None = None,
                 json_logs: bool = True, worker_user: str | None = None) -> None:
        self.deployment = deployment
        self.tokens = TokenBook(deployment.tokens)
        self.progress = progress
        self.json_logs = json_logs
        self.runtime_dir = runtime_dir()
        self.worker_user_setting = worker_user  # None: gateway.worker_user (--worker-user)
        self.worker_user: WorkerUser | None = None  # the pools' user (resolved at start)
        self.dispatcher: Dispatcher | None = None
        self.pools: dict[PoolKey, SupervisorProcess] = {}
        self.starting: list[SupervisorProcess] = []  # a reload's new pools, until the switch
        self.retiring: list[SupervisorProcess] = []  # a reload's old pools, while they drain
        self.table = RoutingTable({})
        self.remote: RemoteListener | None = None
        self.environments: dict[tuple[str, int], Environment] = {}  # versions' own venvs
        # the last lines of each version's workers (gateway.worker_log_lines, read at start)
        self.worker_logs = WorkerLogs(deployment.gateway.worker_log_lines)
        self.unrouted: dict[int, int] = {}  # calls naming no served model or version, by status
        self._reloading = asyncio.Lock()

    @property
    def served(self) -> list[VersionPool]:
        return [p.pool for p in self.pools.values()]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every pool and wait (bounded) until each is up or has failed."""
        self.deployment, _ = await asyncio.to_thread(prepare, self.deployment)  # serve did
        self.environments = await asyncio.to_thread(build_all, self.deployment)
        self.worker_user = resolve(self.worker_user_setting
                                   or self.deployment.gateway.worker_user)
        socket = f"{self.runtime_dir}/workers.sock"
        self.dispatcher = Dispatcher(f"ipc://{socket}")
        self.dispatcher.busy_poll_us = self.deployment.gateway.busy_poll_us
        if self.worker_user is not None:
            open_runtime_to(self.worker_user, self.runtime_dir, socket)
        if self.deployment.gateway.workers_listen:
            self.remote = RemoteListener(self.dispatcher, self.deployment)
        self.pools = self._plan(self.deployment, self.environments)
        await self._check_access(self.pools.values())
        await self._bring_up(self.pools.values(), self.progress)
        self.table = self._routes(self.deployment, self.pools)

    async def reload(self, deployment: Deployment) -> dict[str, list[str]]:
        """Serve ``deployment`` instead; returns the versions started, kept and stopped."""
        async with self._reloading:
            # built before anything moves: a failed build is a bad config, the old one serving
            environments = await asyncio.to_thread(build_all, deployment)
            planned = self._plan(deployment, environments)
            fresh = [p for key, p in planned.items() if key not in self.pools]
            try:
                await self._check_access(fresh)
            except WorkerUserError as exc:
                raise ReloadError(str(exc)) from None
            # Until the switch, a stop (which cancels this reload) takes these down too.
            self.starting = fresh
            try:
                await self._bring_up(fresh, None)
                failed = [p for p in fresh if not p.pool.ready]
                if failed:
                    raise ReloadError("; ".join(
                        f"{p.pool.model} v{p.pool.version}: "
                        f"{p.pool.failure or 'no worker came up'}" for p in failed))
            except Exception:  # nothing half-started is left behind, whatever went wrong
                await self._take_down(fresh)
                self.starting = []
                raise
            retired = [p for key, p in self.pools.items() if key not in planned]
            self.table = self._routes(deployment, planned)  # the switch: one assignment
            self.pools = planned
            for (name, n, _), kept in planned.items():  # the gateway's defaults may have changed
                kept.pool.timeout_s, kept.pool.max_queue = _limits(deployment, name, n)
            self.deployment, self.environments = deployment, environments
            if self.dispatcher is not None:
                self.dispatcher.busy_poll_us = deployment.gateway.busy_poll_us
            self.tokens = TokenBook(deployment.tokens)
            self.starting, self.retiring = [], retired  # a stop during the drain drains them
            await self._take_down(retired)
            self.retiring = []
            return {
                "started": [_label(p) for p in fresh],
                "kept": [_label(p) for p in planned.values() if p not in fresh],
                "stopped": [_label(p) for p in retired],
            }

    async def stop(self) -> None:
        await self._take_down([*self.pools.values(), *self.starting, *self.retiring])
        if self.remote is not None:
            self.remote.zap.close()
        if self.dispatcher is not None:
            self.dispatcher.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    # ------------------------------------------------------------------ pools

    def _plan(self, deployment: Deployment, environments: dict[tuple[str, int], Environment]
              ) -> dict[PoolKey, SupervisorProcess]:
        """The pool processes ``deployment`` needs: running ones are reused as they are, the
        others are created (not started yet)."""
        assert self.dispatcher is not None
        planned: dict[PoolKey, SupervisorProcess] = {}
        for name, model in deployment.models.items():
            if model.unpublished:
                continue
            for n, version in sorted(model.versions.items()):
                if version.unpublished:
                    continue
                spec = pool_spec(deployment, name, n, self.dispatcher.address, self.json_logs,
                                 environments.get((name, n)))
                key = (name, n, spec.version_id)
                if key in self.pools:
                    planned[key] = self.pools[key]
                    continue
                timeout_s, max_queue = _limits(deployment, name, n)
                pool = VersionPool(
                    model=name, version=n, version_id=spec.version_id,
                    timeout_s=timeout_s, max_queue=max_queue, expected_workers=version.workers,
                    batch_size=version.batch.max_size if version.batch else 0,
                )
                spec = msgspec.structs.replace(spec, pool_secret=pool.secret)
                planned[key] = SupervisorProcess(spec, pool, self.dispatcher,
                                                 self.worker_logs, self.worker_user)
        return planned

    @staticmethod
    def _routes(deployment: Deployment, pools: dict[PoolKey, SupervisorProcess]) -> RoutingTable:
        by_model: dict[str, dict[int, VersionPool]] = {}
        for process in pools.values():
            by_model.setdefault(process.pool.model, {})[process.pool.version] = process.pool
        return RoutingTable({
            name: model_routes(name, model, by_model.get(name, {}), {
                n: script_in_snapshot(deployment, model, v)
                for n, v in model.versions.items() if not v.unpublished})
            for name, model in deployment.models.items() if not model.unpublished
        }, unpublished={name for name, model in deployment.models.items() if model.unpublished})

    async def _check_access(self, processes: Iterable[SupervisorProcess]) -> None:
        """As root: the pools' user can run these pools (or :class:`WorkerUserError` says why)."""
        specs = [p.spec for p in processes if p.spec.workers > 0]
        if self.worker_user is not None and specs:
            await asyncio.to_thread(check_access, self.worker_user, specs)

    async def _bring_up(self, processes: Iterable[SupervisorProcess],
                        progress: Progress | None) -> None:
        """Start pool processes and wait until each has all its workers or has failed."""
        assert self.dispatcher is not None
        processes = list(processes)
        if not processes:
            return
        pools = [p.pool for p in processes]
        total = sum(p.expected_workers for p in pools)
        settled = asyncio.Event()

        def check_settled() -> None:
            if all(len(p.workers) >= p.expected_workers or p.failure for p in pools):
                settled.set()

        def on_change(pool: VersionPool) -> None:
            if progress is not None:
                progress(sum(len(p.workers) for p in pools), total, pool)
            check_settled()

        for process in processes:
            self.dispatcher.add_pool(process.pool)
            process.pool.on_change.append(on_change)
        await asyncio.gather(*(p.start() for p in processes))
        check_settled()  # pools with no local workers (remote only) are settled at once
        try:
            await asyncio.wait_for(settled.wait(), self.deployment.gateway.startup_timeout_s)
        except TimeoutError:
            log.warning("startup_incomplete", not_ready=[
                f"{p.model} v{p.version}" for p in pools if not p.ready])
        for process in processes:
            process.pool.on_change.remove(on_change)

    async def _take_down(self, processes: Iterable[SupervisorProcess]) -> None:
        """Drain pools (their calls in flight finish), then stop them."""
        processes = list(processes)
        drain = self.deployment.gateway.drain_timeout_s
        await asyncio.gather(*(p.stop(drain) for p in processes))
        if self.dispatcher is not None:
            for process in processes:
                self.dispatcher.remove_pool(process.pool)

    @property
    def ready(self) -> bool:
        """Every served version has a ready worker (and something is served)."""
        served = self.served
        return bool(served) and all(p.ready for p in served)

    def callable_model(self, name: str, authorization: str | None
                       ) -> tuple[ModelRoutes, str | None]:
        """Model ``name`` and the caller's token name (None: a public model) when the caller
        may call it; otherwise 404, 401 or 403 (SPEC §4), the same for every route."""
        routes = self.table.model(name)
        if routes.public:
            return routes, None
        return routes, self.tokens.authorize(authorization, routes.allowed, f"model `{name}`")

    def submit(self, model: str, label: str, body: bytes, request_id: str = "",
               asynchronous: bool = False, *, v2_json: int = -1
               ) -> tuple[Served, asyncio.Future[Reply]]:
        """Pick the version ``label`` names (``latest``, ``prod`` or a number) and hand it the
        call: the version, and the future of the worker's reply. Raises :class:`NotFound` when
        there is no such version; a pool that refuses the call (its queue is full, or it is
        unavailable) fails the future instead, so the caller still knows which version it was.

        Nothing awaits between the pick and the submit: a reload that swapped the routing table
        is seen, and a retired pool never gets a new call. ``asynchronous``: an async
        prediction, limited by ``async_timeout_s`` rather than ``timeout_s``; ``v2_json``: see
        :class:`workers.wire.Call`."""
        served = self.table.model(model).pick(label)
        dispatcher = self.dispatcher
        assert dispatcher is not None, "the service is not started"
        try:
            timeout_s = (async_timeout(self.deployment, model, served.number)
                         if asynchronous else None)
            return served, dispatcher.submit(served.pool, body, request_id, timeout_s,
                                             v2_json=v2_json)
        except ModelgateError as exc:
            refused: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return served, refused

    def count_unrouted(self, model: str, label: str, status: int) -> None:
        """Count a model call answered before a version was picked (bad token, empty body,
        unknown model...): under the version ``label`` names when it is served, otherwise
        without a model (a name taken from the URL would let callers create series at will)."""
        routes = self.table.models.get(model)
        if routes is not None:
            try:
                routes.pick(label).pool.stats.count(status)
                return
            except (NotFound, ValueError):
                pass
        self.unrouted[status] = self.unrouted.get(status, 0) + 1

    def visible_models(self, authorization: str | None) -> tuple[list[ModelRoutes], str | None]:
        """The catalogue rule: public models, plus those the presented token may call (and
        that token's name); 401 for a token that is not known."""
        token = self.tokens.identify(authorization)
        if authorization and token is None:
            raise Unauthorized("the access token is not valid")
        models = [routes for routes in self.table.models.values()
                  if routes.public or (token is not None and token in routes.allowed)]
        return models, token

    def readiness(self, detailed: bool = True) -> dict[str, dict[str, object]]:
        """Per version: ready or not, workers up, and why not when it cannot serve. Not
        ``detailed`` (anonymous callers): public models only, and no reason."""
        shown = None if detailed else {n for n, r in self.table.models.items() if r.public}
        return {
            f"{p.model}/{p.version}": {
                "ready": p.ready, "workers_ready": len(p.workers), "workers": p.expected_workers,
                **({"reason": p.failure} if p.failure and detailed else {}),
            }
            for p in self.served if shown is None or p.model in shown
        }

    def is_admin(self, authorization: str | None) -> bool:
        """Whether the caller presents an admin token (no 401 for others: probes stay open)."""
        return authorization is not None and self.tokens.identify(authorization) in \
            self.tokens.admins


def runtime_dir() -> str:
    """A fresh directory for the workers' socket, named after this process; the directories
    of gateways that died without removing theirs (killed, crashed) are removed first."""
    root = tempfile.gettempdir()
    for entry in os.listdir(root):
        match = _RUNTIME_DIR.fullmatch(entry)
        if match is None or _alive(int(match[1])):
            continue
        path = os.path.join(root, entry)
        try:
            if os.stat(path).st_uid == os.geteuid():
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
    return tempfile.mkdtemp(prefix=f"modelgate-{os.getpid()}-", dir=root)


_RUNTIME_DIR = re.compile(r"modelgate-(\d+)-[a-z0-9_]+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def pool_spec(deployment: Deployment, name: str, n: int, connect: str,
              json_logs: bool = True, environment: Environment | None = None) -> PoolSpec:
    """What a pool process needs to serve version ``n`` of model ``name``: the same for a local
    pool and for a remote one (``modelgate worker``), so both compute the same version id."""
    model = deployment.models[name]
    version = model.versions[n]
    assert version.snapshot is not None, "prepare() gives every served version its snapshot"
    tree = store_of(deployment).tree(version.snapshot)
    lock = environment.lock_sha256 if environment is not None else ""
    r_libs = version.environment.r_libs if version.environment is not None else []
    return PoolSpec(
        model=name, version=n, version_id=version_id(deployment, name, model, version, lock),
        python=environment.python if environment is not None else "",
        r_libs=[str(tree / lib) for lib in r_libs],
        language=version.language,
        script=str(tree / script_in_snapshot(deployment, model, version)), workdir=str(tree),
        function=version.function, workers=version.workers, preload=version.preload,
        slots=version.slots,
        batch_max_size=version.batch.max_size if version.batch else 0,
        batch_max_wait_ms=version.batch.max_wait_ms if version.batch else 0.0,
        env=dict(model.env), connect=connect, log_json=json_logs,
    )


def _limits(deployment: Deployment, name: str, n: int) -> tuple[float, int]:
    """A version's call timeout and queue bound: its own, or the gateway's defaults (which
    are not part of the version id, so a reload applies them to warm pools too)."""
    version, settings = deployment.models[name].versions[n], deployment.gateway
    return (version.timeout_s or settings.request_timeout_s,
            version.max_queue or settings.max_queue)


def async_timeout(deployment: Deployment, name: str, n: int) -> float:
    """An async prediction's limit on version ``n``: its ``async_timeout_s``, or the gateway's."""
    version = deployment.models[name].versions[n]
    return version.async_timeout_s or deployment.gateway.async_timeout_s


def _label(process: SupervisorProcess) -> str:
    return f"{process.pool.model} v{process.pool.version}"
